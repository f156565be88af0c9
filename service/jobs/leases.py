"""SQLite access and the work-item protocol shared by job documents and training runs.

A work item moves `queued -> running -> succeeded | failed | cancelled`. A worker *claims* an item with a
conditional UPDATE that gives it a lease; it renews the lease while it works; a finished item is written
only by the claim that holds it, so a duplicate delivery of the same task does nothing and no document lands
twice in the results. Items whose task was lost (their worker died) are found by `expired_items` and handed
out again by `requeue_expired`. Every method opens its own connection: safe across threads and processes.
"""

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


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Database:
    """Connections to one SQLite file (WAL by default)."""

    def __init__(self, db_path: Path, journal_mode: str = "wal") -> None:
        self.db_path = db_path
        self.journal_mode = journal_mode

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


class WorkItems(Database):
    """Claims, leases and outcomes of work items (job documents and training runs)."""

    def mark_enqueued(self, table: WorkTable, item_ids: list[str]) -> None:
        with self._write() as db:
            db.executemany(
                f"update {table} set enqueued_at = ? where id = ?", [(time.time(), i) for i in item_ids]
            )

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

    @staticmethod
    def _lost(queue_idle: bool) -> str:
        """Items whose task is gone: running with an expired lease (the worker died); queued but never
        handed to the queue (a crash between insert and enqueue); queued, handed to the queue long ago,
        while the queue is empty (a worker died between taking the task and claiming the item)."""
        lost = "(status = 'running' and lease_until < :now)"
        lost += " or (status = 'queued' and enqueued_at is null and created_at < :stale)"
        return lost + (" or (status = 'queued' and enqueued_at < :stale)" if queue_idle else "")

    def expired_items(self, table: WorkTable, stale_after_s: float, queue_idle: bool) -> list[Row]:
        now = time.time()
        sql = f"select * from {table} where {self._lost(queue_idle)}"
        with self._connect() as db:
            rows = db.execute(sql, {"now": now, "stale": now - stale_after_s}).fetchall()
        return [dict(row) for row in rows]

    def requeue_expired(
        self, table: WorkTable, item_id: str, max_attempts: int, stale_after_s: float, queue_idle: bool
    ) -> str | None:
        """Give a lost item back to the queue (`queued`), or fail it when it used up its attempts
        (`failed`); None when it is no longer lost (someone else requeued it, or it moved on)."""
        now = time.time()
        values = {"now": now, "stale": now - stale_after_s, "id": item_id}
        with self._write() as db:
            sql = f"select status, attempts from {table} where id = :id and ({self._lost(queue_idle)})"
            row = db.execute(sql, values).fetchone()
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
                f"update {table} set status = 'queued', claim = null, lease_until = null, enqueued_at = ?"
                " where id = ?",
                (now, item_id),
            )
        return "queued"

    def counts(self, table: WorkTable) -> dict[str, int]:
        rows = self._all(f"select status, count(*) as n from {table} group by status")
        return {row["status"]: int(row["n"]) for row in rows}
