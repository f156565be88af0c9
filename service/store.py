"""Durable state: metadata in SQLite (stdlib sqlite3, WAL), file contents on disk, content-addressed.

Layout of `settings.data_dir`: `docextract.db` (documents, jobs, job documents, training runs),
`files/ab/<sha256>` (uploads), `results/ab/<key>.json` (extraction results), `datasets/<run>/`, `tmp/`.
Job documents and training runs are work items: see `service.jobs.leases` for how workers claim them.
"""

import hashlib
import json
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from service.jobs.leases import TERMINAL, Row, WorkItems, WorkTable, now_iso

__all__ = ["TERMINAL", "Row", "Store", "WorkTable", "now_iso", "sha256_hex", "write_atomic"]

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
    claim text, lease_until real, enqueued_at real, created_at real not null,
    started text, finished text, result_key text, pages integer);
create index if not exists job_documents_job on job_documents (job_id, position);
create index if not exists job_documents_lease on job_documents (status, lease_until);
create table if not exists training_runs (
    id text primary key, status text not null, created text not null, started text, finished text,
    options text not null, progress text not null, metrics text not null, model_id text, error text,
    attempts integer not null default 0, claim text, lease_until real,
    enqueued_at real, created_at real not null);
create index if not exists training_runs_lease on training_runs (status, lease_until);
create index if not exists jobs_created on jobs (created);
create index if not exists training_runs_created on training_runs (created);
"""

# Lists are newest first. `created` has whole seconds: rows of one second fall back on their insertion order
# (rowid), so the order is total and offset pages neither overlap nor skip rows.
NEWEST_FIRST = "order by created desc, rowid desc limit ? offset ?"
# A cursor page starts after its (created, rowid): later rows in that order, whatever was inserted since.
AFTER = "(? is null or created < ? or (created = ? and rowid < ?))"
Cursor = tuple[str, int]  # (created, rowid) of the last row of a page
JOB_PROGRESS = (
    "(select count(*) from job_documents d where d.job_id = jobs.id) as documents_total,"
    " (select count(*) from job_documents d where d.job_id = jobs.id and d.status in ({})) as documents_done,"
    " (select coalesce(sum(d.pages), 0) from job_documents d where d.job_id = jobs.id) as pages_done"
).format(", ".join("?" * len(TERMINAL)))
RUN_SUMMARY = "id, status, created, started, finished, options, progress, model_id, error"  # not metrics


def after_args(after: Cursor | None) -> tuple[object, ...]:
    """The parameters of `AFTER`."""
    created, sequence = after if after is not None else (None, None)
    return created, created, created, sequence


def add_column(db: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    """Add a column that tables created by an older version lack (another process may add it first)."""
    if any(row[1] == column for row in db.execute(f"pragma table_info({table})")):
        return
    try:
        db.execute(f"alter table {table} add column {column} {kind}")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


class Store(WorkItems):
    """Metadata and files of one data directory."""

    def __init__(self, data_dir: Path, journal_mode: str = "wal") -> None:
        super().__init__(Path(data_dir) / "docextract.db", journal_mode)
        self.data_dir = Path(data_dir)

    def init(self) -> None:
        """Create the folders and tables (idempotent); called at start-up, never at import."""
        for name in ("files", "results", "datasets", "tmp"):
            (self.data_dir / name).mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(f"pragma journal_mode={self.journal_mode}")
            db.executescript(SCHEMA)
            add_column(db, "job_documents", "pages", "integer")  # a data dir from before page counts

    def writable(self) -> bool:
        """True when the data directory takes a new file and the database its write lock (a read-only or
        full disk fails both); a lock that another writer holds counts as writable."""
        probe = self.data_dir / "tmp" / f".probe-{os.getpid()}-{time.monotonic_ns()}"
        try:
            probe.write_bytes(b"ok")
            probe.unlink()
            with closing(sqlite3.connect(self.db_path, timeout=0.5, isolation_level=None)) as db:
                db.execute("begin immediate")
                db.execute("rollback")
        except sqlite3.OperationalError as exc:
            return exc.sqlite_errorcode == sqlite3.SQLITE_BUSY
        except (OSError, sqlite3.Error):
            return False
        return True

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

    def list_documents(self, limit: int, offset: int, after: Cursor | None = None) -> tuple[list[Row], int]:
        """One page of documents, newest first (each row's `seq` places it for a cursor); and how many."""
        sql = f"select *, rowid as seq from documents where {AFTER} {NEWEST_FIRST}"
        rows = self._all(sql, *after_args(after), limit, offset)
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

    def read_result(self, key: str) -> bytes | None:
        """A result file by its key (JSON bytes), or None when it is gone."""
        path = self._result_path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

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

    def list_jobs(
        self, limit: int, offset: int, status: str | None = None, after: Cursor | None = None
    ) -> tuple[list[Row], int]:
        """One page of jobs, newest first, each with `documents_done` and `documents_total` counts instead
        of its documents; and how many jobs match `status` (None: all)."""
        rows = self._all(
            f"select *, rowid as seq, {JOB_PROGRESS} from jobs where (? is null or status = ?) and {AFTER}"
            f" {NEWEST_FIRST}",
            *TERMINAL,
            status,
            status,
            *after_args(after),
            limit,
            offset,
        )
        for row in rows:
            row["options"] = json.loads(row["options"])
        return rows, self._count("jobs", status)

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

    def delete_job(self, job_id: str) -> bool | None:
        """Delete an ended job, its documents' rows, and the result files that no other job document and no
        stored document (its latest result) points at. None: no such job; False: it has not ended. The
        documents' files stay: they are stored documents (`DELETE /v1/documents/{id}` removes them)."""
        with self._write() as db:
            job = db.execute("select finished from jobs where id = ?", (job_id,)).fetchone()
            if job is None or job[0] is None:
                return None if job is None else False
            written = db.execute(
                "select result_key, document_id from job_documents"
                " where job_id = ? and result_key is not null",
                (job_id,),
            ).fetchall()
            db.execute("delete from job_documents where job_id = ?", (job_id,))
            db.execute("delete from jobs where id = ?", (job_id,))
            for key, document_id in written:  # under the write lock: nothing comes to point at one meanwhile
                if not self._result_in_use(db, key, document_id):
                    self._result_path(key).unlink(missing_ok=True)
        return True

    @staticmethod
    def _result_in_use(db: sqlite3.Connection, key: str, document_id: str) -> bool:
        """Another job document or the stored document points at the result, or a job still at work on
        the document may be writing the same file (same document, model and options: same key)."""
        return bool(
            db.execute(
                "select exists(select 1 from job_documents where result_key = ?)"
                " or exists(select 1 from documents where result_key = ?)"
                " or exists(select 1 from job_documents"
                " where document_id = ? and status in ('queued', 'running'))",
                (key, key, document_id),
            ).fetchone()[0]
        )

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

    def list_runs(
        self, limit: int, offset: int, status: str | None = None, after: Cursor | None = None
    ) -> tuple[list[Row], int]:
        """One page of training runs, newest first, without their metrics; and how many match `status`."""
        rows = self._all(
            f"select {RUN_SUMMARY}, rowid as seq from training_runs where (? is null or status = ?)"
            f" and {AFTER} {NEWEST_FIRST}",
            status,
            status,
            *after_args(after),
            limit,
            offset,
        )
        for row in rows:
            row["options"], row["progress"] = json.loads(row["options"]), json.loads(row["progress"])
        return rows, self._count("training_runs", status)

    def _count(self, table: str, status: str | None) -> int:
        total = self._one(f"select count(*) as n from {table} where ? is null or status = ?", status, status)
        return int(total["n"]) if total else 0

    def update_run(self, run_id: str, progress: dict[str, Any], metrics: list[dict[str, Any]] | None) -> None:
        """Progress (and, at an epoch's end, the metrics so far) of a running training run."""
        with self._write() as db:
            db.execute(
                "update training_runs set progress = ?, metrics = coalesce(?, metrics)"
                " where id = ? and status = 'running'",
                (json.dumps(progress), None if metrics is None else json.dumps(metrics), run_id),
            )

    def cancel_run(self, run_id: str) -> bool:
        """Cancel a queued or running training run (its lease released); False when it had already ended.
        The worker running it sees the status and stops its process."""
        with self._write() as db:
            changed = db.execute(
                "update training_runs set status = 'cancelled', finished = ?, claim = null,"
                " lease_until = null where id = ? and status in ('queued', 'running')",
                (now_iso(), run_id),
            ).rowcount
        return bool(changed)

    def dataset_dir(self, run_id: str) -> Path:
        return self.data_dir / "datasets" / run_id
