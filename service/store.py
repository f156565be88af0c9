"""Durable state: metadata in SQLite (stdlib sqlite3, WAL), file contents on disk, content-addressed.

Layout of `settings.data_dir`: `docextract.db` (documents, jobs, job documents, training runs),
`files/ab/<sha256>` (uploads), `results/ab/<key>.json` (extraction results), `datasets/<run>/`, `tmp/`.

Work items (a document of a job, a training run) move `queued -> running -> succeeded | failed | cancelled`.
A worker *claims* an item with a conditional UPDATE that gives it a lease; it renews the lease while it
works; a finished item is written only by the claim that holds it, so a duplicate delivery of the same task
does nothing and no document lands twice in the results. Items whose lease ran out (their worker died)
are found by `expired_items` and handed out again. Every method opens its own connection: the store is
safe to share between threads and processes.
"""

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Row = dict[str, Any]
WorkTable = Literal["job_documents", "training_runs"]
TERMINAL = ("succeeded", "failed", "cancelled")

SCHEMA = """
create table if not exists documents (
    id text primary key, filename text, format text, size integer not null, created text not null,
    result_key text, result_model text, result_created text);
create table if not exists jobs (
    id text primary key, status text not null, created text not null, started text, finished text,
    options text not null, callback_url text, callback_state text);
create table if not exists job_documents (
    id text primary key, job_id text not null, position integer not null, document_id text not null,
    filename text, status text not null, error text, attempts integer not null default 0,
    claim text, lease_until real, enqueued integer not null default 0, created_at real not null,
    started text, finished text, result_key text);
create index if not exists job_documents_job on job_documents (job_id, position);
create index if not exists job_documents_lease on job_documents (status, lease_until);
create table if not exists training_runs (
    id text primary key, status text not null, created text not null, started text, finished text,
    options text not null, progress text not null, metrics text not null, model_id text, error text,
    attempts integer not null default 0, claim text, lease_until real,
    enqueued integer not null default 0, created_at real not null);
create index if not exists training_runs_lease on training_runs (status, lease_until);
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class Store:
    """Metadata and files of one data directory."""

    def __init__(self, data_dir: Path, journal_mode: str = "wal") -> None:
        self.data_dir = Path(data_dir)
        self.db_path = self.data_dir / "docextract.db"
        self.journal_mode = journal_mode

    def init(self) -> None:
        """Create the folders and tables (idempotent); called at start-up, never at import."""
        for name in ("files", "results", "datasets", "tmp"):
            (self.data_dir / name).mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(f"pragma journal_mode={self.journal_mode}")
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: writers queue up instead of failing)."""
        with self._connect() as db:
            db.execute("begin immediate")
            try:
                yield db
            except BaseException:
                db.execute("rollback")
                raise
            db.execute("commit")

    def _one(self, sql: str, *args: object) -> Row | None:
        with self._connect() as db:
            row = db.execute(sql, args).fetchone()
        return dict(row) if row is not None else None

    def _all(self, sql: str, *args: object) -> list[Row]:
        with self._connect() as db:
            return [dict(row) for row in db.execute(sql, args).fetchall()]

    def ping(self) -> bool:
        try:
            return self._one("select 1 as ok") is not None
        except sqlite3.Error:
            return False

    # Files: content-addressed.

    def _file_path(self, sha: str) -> Path:
        return self.data_dir / "files" / sha[:2] / sha

    def _result_path(self, key: str) -> Path:
        return self.data_dir / "results" / key[:2] / f"{key}.json"

    def read_file(self, sha: str) -> bytes:
        return self._file_path(sha).read_bytes()

    # Documents.

    def add_document(self, data: bytes, filename: str | None, fmt: str | None) -> Row:
        """Store an upload under its sha256 (the same bytes twice are one document)."""
        sha = sha256_hex(data)
        path = self._file_path(sha)
        if not path.is_file():
            write_atomic(path, data)
        with self._write() as db:
            db.execute(
                "insert or ignore into documents (id, filename, format, size, created)"
                " values (?, ?, ?, ?, ?)",
                (sha, filename, fmt, len(data), now_iso()),
            )
        document = self.get_document(sha)
        assert document is not None
        return document

    def get_document(self, document_id: str) -> Row | None:
        return self._one("select * from documents where id = ?", document_id)

    def list_documents(self, limit: int, offset: int) -> tuple[list[Row], int]:
        rows = self._all("select * from documents order by created, id limit ? offset ?", limit, offset)
        total = self._one("select count(*) as n from documents")
        return rows, int(total["n"]) if total else 0

    def delete_document(self, document_id: str) -> bool:
        with self._write() as db:
            deleted = db.execute("delete from documents where id = ?", (document_id,)).rowcount
        if deleted:
            self._file_path(document_id).unlink(missing_ok=True)
        return bool(deleted)

    def document_result(self, document_id: str) -> bytes | None:
        """The latest stored result of a document (JSON bytes), or None."""
        document = self.get_document(document_id)
        if document is None or document["result_key"] is None:
            return None
        path = self._result_path(document["result_key"])
        return path.read_bytes() if path.is_file() else None

    def write_result(self, document_id: str, model_id: str, options: dict[str, Any], result: bytes) -> str:
        """Write a result file idempotently: its key is fixed by document, model and options, and a rewrite
        atomically replaces it with an equivalent one. Returns the key (see `point_result`)."""
        key = sha256_hex(json.dumps([document_id, model_id, options], sort_keys=True).encode())
        write_atomic(self._result_path(key), result)
        return key

    def point_result(self, document_id: str, key: str, model_id: str) -> None:
        """Make a written result the document's latest one."""
        with self._write() as db:
            db.execute(
                "update documents set result_key = ?, result_model = ?, result_created = ? where id = ?",
                (key, model_id, now_iso(), document_id),
            )

    # Jobs.

    def create_job(
        self,
        job_id: str,
        documents: list[tuple[str, str | None]],
        options: dict[str, Any],
        callback: str | None,
    ) -> None:
        """A job over `(document_id, filename)` pairs (duplicates of one document are kept once)."""
        seen: dict[str, str | None] = {}
        for document_id, filename in documents:
            seen.setdefault(document_id, filename)
        with self._write() as db:
            db.execute(
                "insert into jobs (id, status, created, options, callback_url, callback_state)"
                " values (?, 'queued', ?, ?, ?, ?)",
                (job_id, now_iso(), json.dumps(options), callback, "pending" if callback else None),
            )
            db.executemany(
                "insert into job_documents (id, job_id, position, document_id, filename, status, created_at)"
                " values (?, ?, ?, ?, ?, 'queued', ?)",
                [
                    (f"{job_id}:{doc}", job_id, n, doc, name, time.time())
                    for n, (doc, name) in enumerate(seen.items())
                ],
            )

    def get_job(self, job_id: str) -> Row | None:
        job = self._one("select * from jobs where id = ?", job_id)
        if job is not None:
            job["options"] = json.loads(job["options"])
            job["documents"] = self._all(
                "select * from job_documents where job_id = ? order by position", job_id
            )
        return job

    def job_item(self, item_id: str) -> Row | None:
        return self._one("select * from job_documents where id = ?", item_id)

    def finish_job_if_done(self, job_id: str) -> bool:
        """Set the job's final status when none of its documents is left to do. True for the one caller
        that made the transition (it sends the callback)."""
        with self._write() as db:
            counts = dict(
                db.execute(
                    "select status, count(*) from job_documents where job_id = ? group by status", (job_id,)
                ).fetchall()
            )
            if counts.get("queued", 0) or counts.get("running", 0):
                return False
            status = "succeeded" if set(counts) <= {"succeeded"} else "failed"
            changed = db.execute(
                "update jobs set status = ?, finished = ? where id = ? and finished is null",
                (status, now_iso(), job_id),
            ).rowcount
        return bool(changed)

    def cancel_job(self, job_id: str) -> bool:
        """Cancel a job that has not ended: its queued and running documents become cancelled."""
        with self._write() as db:
            changed = db.execute(
                "update jobs set status = 'cancelled', finished = ? where id = ? and finished is null",
                (now_iso(), job_id),
            ).rowcount
            if changed:
                db.execute(
                    "update job_documents set status = 'cancelled', finished = ?, claim = null"
                    " where job_id = ? and status in ('queued', 'running')",
                    (now_iso(), job_id),
                )
        return bool(changed)

    def get_job_options(self, job_id: str) -> dict[str, Any]:
        row = self._one("select options from jobs where id = ?", job_id)
        return json.loads(row["options"]) if row else {}

    def take_callback(self, job_id: str) -> bool:
        """True for the one caller that gets to send the job's callback (`pending` -> `sending`)."""
        with self._write() as db:
            changed = db.execute(
                "update jobs set callback_state = 'sending' where id = ? and callback_state = 'pending'",
                (job_id,),
            ).rowcount
        return bool(changed)

    def set_callback_state(self, job_id: str, state: str) -> None:
        with self._write() as db:
            db.execute("update jobs set callback_state = ? where id = ?", (state, job_id))

    # Work items (job documents and training runs): claims, leases, outcomes.

    def mark_enqueued(self, table: WorkTable, item_ids: list[str]) -> None:
        with self._write() as db:
            db.executemany(f"update {table} set enqueued = 1 where id = ?", [(i,) for i in item_ids])

    def claim(self, table: WorkTable, item_id: str, claim: str, lease_s: float) -> Row | None:
        """Take a queued item (or one whose lease ran out); None when someone else has it or it is done."""
        now = time.time()
        with self._write() as db:
            changed = db.execute(
                f"update {table} set status = 'running', claim = ?, lease_until = ?, attempts = attempts + 1,"
                " started = coalesce(started, ?) where id = ?"
                " and (status = 'queued' or (status = 'running' and lease_until < ?))",
                (claim, now + lease_s, now_iso(), item_id, now),
            ).rowcount
            if changed and table == "job_documents":  # the job is running from its first claim on
                db.execute(
                    "update jobs set status = 'running', started = ? where status = 'queued'"
                    " and id = (select job_id from job_documents where id = ?)",
                    (now_iso(), item_id),
                )
            row = db.execute(f"select * from {table} where id = ?", (item_id,)).fetchone()
        return dict(row) if changed else None

    def renew(self, table: WorkTable, claims: list[str], lease_s: float) -> None:
        if claims:
            with self._write() as db:
                db.executemany(
                    f"update {table} set lease_until = ? where claim = ? and status = 'running'",
                    [(time.time() + lease_s, claim) for claim in claims],
                )

    def settle(self, table: WorkTable, item_id: str, claim: str, status: str, **fields: object) -> bool:
        """Move a running item held by `claim` to `status` (with extra columns); False if the claim is
        stale (the item was cancelled, or handed to another worker)."""
        assignments = "".join(f", {name} = ?" for name in fields)
        finished = now_iso() if status in TERMINAL else None
        with self._write() as db:
            changed = db.execute(
                f"update {table} set status = ?, finished = ?, claim = null, lease_until = null{assignments}"
                " where id = ? and claim = ? and status = 'running'",
                (status, finished, *fields.values(), item_id, claim),
            ).rowcount
        return bool(changed)

    def expired_items(self, table: WorkTable, stale_after_s: float) -> list[Row]:
        """Running items whose lease ran out, and queued ones never handed to the queue (a crash between
        the insert and the enqueue)."""
        now = time.time()
        return self._all(
            f"select * from {table} where (status = 'running' and lease_until < ?)"
            " or (status = 'queued' and enqueued = 0 and created_at < ?)",
            now,
            now - stale_after_s,
        )

    def requeue_expired(self, table: WorkTable, item_id: str, max_attempts: int) -> str | None:
        """Give an expired item back to the queue, or fail it when it used up its attempts. Returns the new
        status for the one caller that changed it."""
        now = time.time()
        with self._write() as db:
            row = db.execute(
                f"select status, attempts from {table} where id = ?"
                " and ((status = 'running' and lease_until < ?) or (status = 'queued' and enqueued = 0))",
                (item_id, now),
            ).fetchone()
            if row is None:
                return None
            if row["status"] == "running" and row["attempts"] >= max_attempts:
                error = f"gave up after {row['attempts']} attempts: the worker stopped (lost or killed)"
                db.execute(
                    f"update {table} set status = 'failed', error = ?, finished = ?, claim = null"
                    " where id = ?",
                    (error, now_iso(), item_id),
                )
                return "failed"
            db.execute(
                f"update {table} set status = 'queued', claim = null, lease_until = null, enqueued = 1"
                " where id = ?",
                (item_id,),
            )
        return "queued"

    def counts(self, table: WorkTable) -> dict[str, int]:
        rows = self._all(f"select status, count(*) as n from {table} group by status")
        return {row["status"]: int(row["n"]) for row in rows}

    # Training runs.

    def create_run(self, run_id: str, options: dict[str, Any]) -> None:
        with self._write() as db:
            db.execute(
                "insert into training_runs (id, status, created, options, progress, metrics, created_at)"
                " values (?, 'queued', ?, ?, '{}', '[]', ?)",
                (run_id, now_iso(), json.dumps(options), time.time()),
            )

    def get_run(self, run_id: str) -> Row | None:
        run = self._one("select * from training_runs where id = ?", run_id)
        if run is not None:
            for name in ("options", "progress", "metrics"):
                run[name] = json.loads(run[name])
        return run

    def update_run(self, run_id: str, progress: dict[str, Any], metrics: list[dict[str, Any]] | None) -> None:
        """Progress (and, at an epoch's end, the metrics so far) of a running training run."""
        with self._write() as db:
            db.execute(
                "update training_runs set progress = ?, metrics = coalesce(?, metrics)"
                " where id = ? and status = 'running'",
                (json.dumps(progress), None if metrics is None else json.dumps(metrics), run_id),
            )

    def dataset_dir(self, run_id: str) -> Path:
        return self.data_dir / "datasets" / run_id
