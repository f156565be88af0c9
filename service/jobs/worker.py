"""What queue workers do, in the API process (embedded mode) and in `docextract worker` alike.

`Worker` holds the task bodies: process one document of a job (claim, extract, write the result
idempotently, settle), send a job's callback, run a training run (in a child process, see
`service.jobs.training`), and keep leases (renew this process's, requeue the ones of dead workers).
`service.deps.build_services` builds it with what it uses, and hands it its queue.
"""

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from service.errors import DocextractError, DocumentError, ModelNotFoundError, NotReadyError
from service.jobs.callbacks import callback_targets, post_to_first_reachable, signature_headers
from service.jobs.queue import DOCUMENTS, TRAINING, TaskQueue
from service.metrics import Metrics
from service.registry import Registry
from service.schemas import ExtractionResult, ExtractOptions
from service.settings import Settings
from service.store import Row, Store, WorkTable
from service.views import job_view

ExtractFn = Callable[[bytes, ExtractOptions, Settings, Any], ExtractionResult]
TABLES: tuple[WorkTable, ...] = ("job_documents", "training_runs")
CALLBACK_ATTEMPTS = 3
log = logging.getLogger("docextract.work")


class Worker:
    """The task bodies; `claims` are this process's running items, whose leases `maintain` renews."""

    queue: TaskQueue  # set by `service.deps.build_services`: the queue needs its worker, and the reverse

    def __init__(
        self, settings: Settings, store: Store, registry: Registry, metrics: Metrics, extract: ExtractFn
    ) -> None:
        self.settings, self.store, self.registry, self.metrics, self.extract = (
            settings,
            store,
            registry,
            metrics,
            extract,
        )
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._claims: dict[WorkTable, set[str]] = {table: set() for table in TABLES}
        self._lock = threading.Lock()

    def new_claim(self) -> str:
        return f"{self.token}:{uuid.uuid4().hex[:12]}"

    @contextmanager
    def holding(self, table: WorkTable, claim: str) -> Iterator[None]:
        with self._lock:
            self._claims[table].add(claim)
        try:
            yield
        finally:
            with self._lock:
                self._claims[table].discard(claim)

    def enqueue_new(self, table: WorkTable, item_ids: list[str]) -> None:
        """Hand new items to the queue. When the queue is unreachable they stay stored as never enqueued,
        and the lease keeper of a worker hands them over once it is back (the request still succeeds)."""
        queue = self.queue
        enqueue = queue.enqueue_document if table == "job_documents" else queue.enqueue_training
        done: list[str] = []
        try:
            for item_id in item_ids:
                enqueue(item_id)
                done.append(item_id)
        except Exception as exc:  # redis.ConnectionError, sqlite3.OperationalError, ...
            log.warning("queue unreachable, %d item(s) wait in the store: %s", len(item_ids) - len(done), exc)
        self.store.mark_enqueued(table, done)

    # Documents of jobs.

    def process_document(self, item_id: str) -> None:
        store, settings = self.store, self.settings
        claim = self.new_claim()
        item = store.claim("job_documents", item_id, claim, settings.lease_s)
        if item is None:
            return  # finished, cancelled, or another worker has it: a duplicate delivery does nothing
        job = store.get_job_options(item["job_id"])
        with self.holding("job_documents", claim):
            self._extract_item(item, ExtractOptions(**job), claim)
        self.finish_job(item["job_id"])

    def _extract_item(self, item: Row, options: ExtractOptions, claim: str) -> None:
        item_id = item["id"]
        try:
            data = self.store.read_file(item["document_id"])
            runtime = self.registry.use(options.model)
            result = self.extract(data, options, self.settings, runtime)
        except FileNotFoundError:
            self._fail(item_id, claim, "the document was deleted before it was processed")
        except (DocumentError, NotReadyError, ModelNotFoundError) as exc:
            self._fail(item_id, claim, exc.detail)
        except Exception as exc:
            log.exception("document %s failed (attempt %s)", item_id, item["attempts"])
            self._retry_or_fail(item, claim, exc)
        else:
            key = self.store.write_result(
                item["document_id"], result.model.id, options.model_dump(), result.model_dump_json().encode()
            )
            pages = len(result.pages)
            if self.store.settle(
                "job_documents", item_id, claim, "succeeded", result_key=key, error=None, pages=pages
            ):
                self.store.point_result(item["document_id"], key, result.model.id)
                self.metrics.observe_result(result, "job")

    def _fail(self, item_id: str, claim: str, error: str) -> None:
        if self.store.settle("job_documents", item_id, claim, "failed", error=error):
            self.metrics.observe_failure("job")

    def _retry_or_fail(self, item: Row, claim: str, exc: Exception) -> None:
        store = self.store
        if item["attempts"] >= self.settings.max_attempts:
            detail = exc.detail if isinstance(exc, DocextractError) else f"{type(exc).__name__}: {exc}"
            self._fail(item["id"], claim, f"failed after {item['attempts']} attempts: {detail}")
        elif store.settle("job_documents", item["id"], claim, "queued"):
            delay = min(2.0 ** item["attempts"], 30.0)  # back off before the next attempt
            self.queue.enqueue_document(item["id"], delay=delay)

    def finish_job(self, job_id: str) -> None:
        """End the job when nothing is left to do; the one caller that ends it queues the callback."""
        if self.store.finish_job_if_done(job_id):
            self.notify(job_id)

    def notify(self, job_id: str) -> None:
        job = self.store.get_job(job_id)
        if job is not None and job["callback_state"] == "pending":
            self.queue.enqueue_callback(job_id)

    def send_callback(self, job_id: str) -> None:
        """POST the job (as `GET /v1/jobs/{id}` returns it) to its callback URL, once; a few attempts
        while the receiver is unreachable or answers with an error. Signed when `callback_secret` is set
        (see `service.jobs.callbacks`): each attempt with its own timestamp."""
        store = self.store
        job = store.get_job(job_id)
        if job is None or job["callback_state"] != "pending" or not store.take_callback(job_id):
            return
        try:  # again: the host may resolve to another address than when the job was posted
            targets = callback_targets(job["callback_url"], self.settings.allow_private_callbacks)
        except DocextractError as exc:
            log.warning("callback of job %s refused: %s", job_id, exc.detail)
            store.set_callback_state(job_id, "failed")
            return
        body = job_view(job).model_dump_json().encode()
        for attempt in range(CALLBACK_ATTEMPTS):
            headers = signature_headers(self.settings.callback_secret, body, time.time())  # fresh each time
            try:
                response = post_to_first_reachable(targets, body, headers, self.settings.callback_timeout_s)
                if response.status_code < 400:
                    store.set_callback_state(job_id, "sent")
                    return
                log.warning("callback of job %s answered %s", job_id, response.status_code)
            except httpx.HTTPError as exc:
                log.warning("callback of job %s failed: %s", job_id, exc)
            time.sleep(2**attempt)
        store.set_callback_state(job_id, "failed")

    # Training runs.

    def run_training(self, run_id: str) -> None:
        from service.jobs.training import run_in_child

        store, settings = self.store, self.settings
        claim = self.new_claim()
        if store.claim("training_runs", run_id, claim, settings.lease_s) is None:
            return
        with self.holding("training_runs", claim):
            requeue = run_in_child(self.store, self.settings, run_id, claim, self.queue.stopping)
        if requeue:
            self.queue.enqueue_training(run_id)

    # Leases.

    def maintain(self) -> None:
        """Renew the leases this process holds; give expired items of dead workers back to the queue."""
        store, settings = self.store, self.settings
        for table in TABLES:
            with self._lock:
                claims = list(self._claims[table])
            store.renew(table, claims, settings.lease_s)
        for table, queue in (("job_documents", DOCUMENTS), ("training_runs", TRAINING)):
            idle = self.queue.idle(queue)
            for row in store.expired_items(table, settings.lease_s, idle):
                status = store.requeue_expired(
                    table, row["id"], settings.max_attempts, settings.lease_s, idle
                )
                if status is not None:
                    log.warning("%s %s was lost (worker gone): now %s", table, row["id"], status)
                    self._after_requeue(table, row, status)

    def _after_requeue(self, table: WorkTable, row: Row, status: str) -> None:
        if table == "training_runs":
            if status == "queued":
                self.queue.enqueue_training(row["id"])
        elif status == "queued":
            self.queue.enqueue_document(row["id"])
        else:
            self.finish_job(row["job_id"])
