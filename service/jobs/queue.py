"""The task queue: huey, one task code path, two backends.

- Embedded (default): huey's SQLite storage in `DATA_DIR/queue.db`, consumed by threads started in the
  app's lifespan (polling delay capped at `queue_poll_s`). Queued tasks survive a restart.
- Distributed (`DOCEXTRACT_REDIS_URL` set): huey's Redis storage; the API only enqueues and
  `docextract worker` processes (anywhere that sees the same data directory) consume.

There are two queues: `documents` (one task per document of a job, plus job callbacks) and `training`
(one task per training run; its consumer has a single thread, so a worker trains one run at a time and
the others wait). Huey removes a task from the queue when a worker takes it, so at-least-once delivery
comes from the store: every running item holds a lease that its worker renews (`maintain`), and an item
whose lease ran out is queued again (see `service.store`).
"""

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from service.settings import Settings

DOCUMENTS, TRAINING = "documents", "training"
QUEUES = (DOCUMENTS, TRAINING)
TASKS = {DOCUMENTS: ("process_document", "send_callback"), TRAINING: ("run_training",)}
log = logging.getLogger("docextract.queue")


class TaskHandlers(Protocol):
    """What the tasks do (`service.jobs.worker.Worker`): the same code in the API process and in workers."""

    def process_document(self, item_id: str) -> None: ...
    def send_callback(self, job_id: str) -> None: ...
    def run_training(self, run_id: str) -> None: ...
    def maintain(self) -> None: ...


def make_huey(settings: Settings, queue: str) -> Huey:
    name = f"docextract-{queue}"
    if settings.redis_url:
        return RedisHuey(name, url=settings.redis_url, results=False)
    filename = str(settings.data_dir / "queue.db")
    return SqliteHuey(name, filename=filename, results=False, journal_mode=settings.sqlite_journal_mode)


class DemotedInfo(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose info records are debug records."""

    def info(self, msg: object, *args: object, **kwargs: object) -> None:
        self.debug(msg, *args, **kwargs)  # type: ignore[arg-type]


class ThreadConsumer(Consumer):
    """huey's consumer with thread workers, run inside a process that owns its signal handlers. Its own
    start-up and shut-down lines (four per queue) are debug records: `TaskQueue` says it in one line."""

    def __init__(self, huey: Huey, **options: object) -> None:
        super().__init__(huey, **options)
        self._logger = DemotedInfo(self._logger, {})

    def _set_signal_handlers(self) -> None:
        pass


class TaskQueue:
    """The huey instances, the registered tasks and (when started) this process's consumers."""

    def __init__(self, settings: Settings, handlers: TaskHandlers) -> None:
        self.settings = settings
        self.hueys = {queue: make_huey(settings, queue) for queue in QUEUES}
        self._handlers = handlers
        documents, training = self.hueys[DOCUMENTS], self.hueys[TRAINING]
        self._process = documents.task(name="process_document")(self._run(lambda h: h.process_document))
        self._callback = documents.task(name="send_callback", retries=3, retry_delay=2)(
            self._run(lambda h: h.send_callback)
        )
        self._train = training.task(name="run_training")(self._run(lambda h: h.run_training))
        self._consumers: list[ThreadConsumer] = []
        self._stop = threading.Event()
        self._maintainer: threading.Thread | None = None

    def _run(self, pick: Callable[[TaskHandlers], Callable[[str], None]]) -> Callable[[str], None]:
        def task(key: str) -> None:
            pick(self._handlers)(key)

        task.__module__ = __name__
        return task

    @property
    def mode(self) -> str:
        return "redis" if self.settings.redis_url else "sqlite"

    # A task's huey id is its key (`JOB_ID:DOCUMENT_ID`, the job id, the run id), so huey's records of it
    # ("Executing ...", "... executed in ...") name the job, document or training run.

    def enqueue_document(self, item_id: str, delay: float = 0) -> None:
        if delay:
            self._process.schedule(args=(item_id,), delay=delay, id=item_id)
        else:
            self._process(item_id, id=item_id)

    def enqueue_callback(self, job_id: str) -> None:
        self._callback(job_id, id=job_id)

    def enqueue_training(self, run_id: str) -> None:
        self._train(run_id, id=run_id)

    def depth(self) -> dict[str, int]:
        """Tasks waiting in each queue."""
        return {queue: huey.pending_count() for queue, huey in self.hueys.items()}

    def idle(self, queue: str) -> bool:
        """True when `queue` holds no task, waiting or scheduled (a retry with a delay)."""
        huey = self.hueys[queue]
        return huey.pending_count() + huey.scheduled_count() == 0

    def ping(self) -> bool:
        try:
            self.depth()
        except Exception:  # redis.ConnectionError, sqlite3.Error, ...
            return False
        return True

    def start(self, queues: tuple[str, ...] = QUEUES, workers: int | None = None) -> None:
        """Start consumers for `queues` in this process, and the lease keeper."""
        poll = self.settings.queue_poll_s
        for queue in queues:
            consumer = ThreadConsumer(
                self.hueys[queue],
                workers=self.threads(queue, workers),
                periodic=False,
                initial_delay=min(0.1, poll),
                backoff=1.15,
                max_delay=poll,
                check_worker_health=False,
            )
            consumer.start()
            self._consumers.append(consumer)
        log.info("consuming the %s queue: %s", self.mode, ", ".join(self.describe(queues, workers)))
        self._stop.clear()
        self._maintainer = threading.Thread(target=self._maintain_loop, name="lease-keeper", daemon=True)
        self._maintainer.start()

    def describe(self, queues: tuple[str, ...], workers: int | None) -> list[str]:
        """Each queue with its threads and tasks, e.g. `training (1 thread: run_training)`."""
        described = []
        for queue in queues:
            count = self.threads(queue, workers)
            described.append(f"{queue} ({count} thread{'s' if count > 1 else ''}: {', '.join(TASKS[queue])})")
        return described

    def threads(self, queue: str, workers: int | None) -> int:
        return 1 if queue == TRAINING else workers or self.settings.queue_workers

    def _maintain_loop(self) -> None:
        interval = min(self.settings.lease_s / 3, 5.0)
        while not self._stop.wait(interval):
            try:
                self._handlers.maintain()
            except Exception:
                log.exception("lease maintenance failed")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop consuming: running tasks get `timeout` seconds to end (the rest is retried later)."""
        self._stop.set()
        for consumer in self._consumers:
            consumer.stop_flag.set()
        for consumer in self._consumers:
            consumer.shutdown_timeout = timeout
            consumer.stop(graceful=True)
        if self._consumers:
            log.info("stopped consuming the %s queue", self.mode)
        self._consumers.clear()
        if self._maintainer is not None:
            self._maintainer.join(timeout=5)
            self._maintainer = None

    @property
    def stopping(self) -> threading.Event:
        return self._stop
