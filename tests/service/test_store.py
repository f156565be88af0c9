"""The store: content-addressed files, documents, jobs, and the claim/lease protocol of work items."""

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from service.store import SCHEMA, Store, sha256_hex
from tests.service.support import read_only


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "data")
    store.init()
    return store


def make_job(store: Store, job_id: str = "job_1", count: int = 2) -> list[str]:
    ids = [store.add_document(f"doc {n}".encode(), f"{n}.json", "json")["id"] for n in range(count)]
    store.create_job(job_id, [(i, None) for i in ids], {"model": "default"}, "http://example.test/hook")
    return [f"{job_id}:{i}" for i in ids]


def test_init_uses_wal_and_is_idempotent(store: Store):
    store.init()
    with sqlite3.connect(store.db_path) as db:
        assert db.execute("pragma journal_mode").fetchone()[0] == "wal"


def test_documents_are_content_addressed_and_stored_once(store: Store):
    first = store.add_document(b"same bytes", "a.pdf", "pdf")
    second = store.add_document(b"same bytes", "b.pdf", "pdf")
    assert first["id"] == second["id"] == sha256_hex(b"same bytes")
    assert first["filename"] == second["filename"] == "a.pdf"
    assert store.read_file(first["id"]) == b"same bytes"
    rows, total = store.list_documents(10, 0)
    assert total == 1 and [r["id"] for r in rows] == [first["id"]]
    assert store.delete_document(first["id"]) and not store.delete_document(first["id"])
    with pytest.raises(FileNotFoundError):
        store.read_file(first["id"])


def test_results_are_written_idempotently_under_a_fixed_key(store: Store):
    document = store.add_document(b"x", None, None)["id"]
    key = store.write_result(document, "default", {"pages": None}, b'{"a": 1}')
    assert store.write_result(document, "default", {"pages": None}, b'{"a": 1}') == key
    assert store.document_result(document) is None  # written, not yet the document's result
    store.point_result(document, key, "default")
    assert store.document_result(document) == b'{"a": 1}'
    assert store.write_result(document, "other", {"pages": None}, b"{}") != key
    assert list((store.data_dir / "results").rglob("*.tmp")) == []


def test_a_claim_is_exclusive_and_a_duplicate_delivery_does_nothing(store: Store):
    item = make_job(store)[0]
    assert store.get_job("job_1")["status"] == "queued"
    assert store.claim("job_documents", item, "worker-a", lease_s=30)["attempts"] == 1
    assert store.get_job("job_1")["status"] == "running"
    assert store.claim("job_documents", item, "worker-b", lease_s=30) is None
    assert not store.settle("job_documents", item, "worker-b", "succeeded")
    assert store.settle("job_documents", item, "worker-a", "succeeded", result_key="k")
    assert store.claim("job_documents", item, "worker-c", lease_s=30) is None
    assert store.job_item(item)["status"] == "succeeded"


def test_an_expired_lease_is_requeued_then_failed_after_max_attempts(store: Store):
    item = make_job(store, count=1)[0]
    store.mark_enqueued("job_documents", [item])
    store.claim("job_documents", item, "dead-worker", lease_s=-1)  # a worker that died at once
    assert [r["id"] for r in store.expired_items("job_documents", 60, queue_idle=False)] == [item]
    assert store.requeue_expired("job_documents", item, 2, 60, queue_idle=False) == "queued"
    assert store.requeue_expired("job_documents", item, 2, 60, queue_idle=False) is None  # someone did it
    store.claim("job_documents", item, "dead-again", lease_s=-1)
    assert store.requeue_expired("job_documents", item, 2, 60, queue_idle=False) == "failed"
    assert "gave up after 2 attempts" in store.job_item(item)["error"]
    assert not store.settle("job_documents", item, "dead-again", "succeeded")  # a late finish is ignored


def test_renewed_leases_do_not_expire(store: Store):
    item = make_job(store, count=1)[0]
    store.claim("job_documents", item, "alive", lease_s=0.05)
    store.renew("job_documents", ["alive"], lease_s=30)
    time.sleep(0.1)
    assert store.expired_items("job_documents", 60, queue_idle=True) == []


def test_items_never_handed_to_the_queue_are_found_later(store: Store):
    item = make_job(store, count=1)[0]
    assert store.expired_items("job_documents", 60, queue_idle=False) == []
    assert [r["id"] for r in store.expired_items("job_documents", -1, queue_idle=False)] == [item]
    assert store.requeue_expired("job_documents", item, 3, -1, queue_idle=False) == "queued"
    assert store.job_item(item)["enqueued_at"] is not None


def test_queued_items_whose_task_was_taken_by_a_dead_worker_are_found_when_the_queue_is_idle(store: Store):
    item = make_job(store, count=1)[0]
    store.mark_enqueued("job_documents", [item])
    with sqlite3.connect(store.db_path) as db:  # handed to the queue 100 s ago
        db.execute("update job_documents set enqueued_at = enqueued_at - 100")
    assert store.expired_items("job_documents", 50, queue_idle=False) == []  # its task may be waiting
    assert [r["id"] for r in store.expired_items("job_documents", 50, queue_idle=True)] == [item]
    assert store.requeue_expired("job_documents", item, 3, 50, queue_idle=True) == "queued"
    assert store.requeue_expired("job_documents", item, 3, 50, queue_idle=True) is None  # just re-enqueued


def test_a_job_ends_once_when_its_last_document_ends(store: Store):
    first, second = make_job(store)
    store.claim("job_documents", first, "a", 30)
    store.settle("job_documents", first, "a", "succeeded")
    assert not store.finish_job_if_done("job_1")
    store.claim("job_documents", second, "b", 30)
    store.settle("job_documents", second, "b", "failed", error="bad")
    assert store.finish_job_if_done("job_1")
    assert not store.finish_job_if_done("job_1")
    assert store.get_job("job_1")["status"] == "failed"


def test_cancel_stops_unfinished_documents_and_a_finished_job_stays(store: Store):
    first, _ = make_job(store)
    store.claim("job_documents", first, "a", 30)
    assert store.cancel_job("job_1") and not store.cancel_job("job_1")
    job = store.get_job("job_1")
    assert job["status"] == "cancelled"
    assert [d["status"] for d in job["documents"]] == ["cancelled", "cancelled"]
    assert not store.settle("job_documents", first, "a", "succeeded")


def succeed(store: Store, item: str, options: dict) -> str:
    """Process a job document as a worker does: write its result, settle it, point the document at it."""
    row = store.job_item(item)
    store.claim("job_documents", item, "w", 30)
    key = store.write_result(row["document_id"], "default", options, b'{"pages": []}')
    assert store.settle("job_documents", item, "w", "succeeded", result_key=key, pages=1)
    store.point_result(row["document_id"], key, "default")
    return key


def test_an_ended_job_is_deleted_with_the_results_nothing_else_uses(store: Store):
    first, second = make_job(store)
    assert store.delete_job("job_1") is False and store.get_job("job_1")  # not ended: kept
    old_key = succeed(store, first, {"dpi": 200})
    succeed(store, second, {"dpi": 200})
    assert store.finish_job_if_done("job_1")
    document = store.job_item(first)["document_id"]
    store.create_job("job_2", [(document, None)], {}, None)
    new_key = succeed(store, "job_2:" + document, {"dpi": 300})  # now the document's latest result
    shared_key = store.job_item(second)["result_key"]  # still the other document's latest result
    assert store.delete_job("job_1") is True
    assert store.get_job("job_1") is None and store.job_item(first) is None
    assert store.read_result(old_key) is None  # nothing pointed at it any more
    assert store.read_result(shared_key) is not None and store.read_result(new_key) is not None
    assert store.read_file(document) == b"doc 0"  # the document stays
    assert store.delete_job("job_1") is None


def test_a_result_that_a_running_job_may_rewrite_is_kept(store: Store):
    first, _ = make_job(store)
    key = succeed(store, first, {})
    document = store.job_item(first)["document_id"]
    store.point_result(document, "another-key", "default")  # the document no longer points at `key`
    store.cancel_job("job_1")
    store.create_job("job_2", [(document, None)], {}, None)  # queued: its result would have the same key
    assert store.delete_job("job_1") and store.read_result(key) is not None


def test_a_database_from_before_page_counts_gets_the_column(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    with closing(sqlite3.connect(data / "docextract.db")) as db:
        db.executescript(SCHEMA.replace(", pages integer", ""))
        assert "pages" not in [row[1] for row in db.execute("pragma table_info(job_documents)")]
    store = Store(data)
    store.init()
    store.init()
    with closing(sqlite3.connect(data / "docextract.db")) as db:
        assert "pages" in [row[1] for row in db.execute("pragma table_info(job_documents)")]


def test_the_callback_is_taken_once(store: Store):
    make_job(store)
    assert store.take_callback("job_1") and not store.take_callback("job_1")
    store.set_callback_state("job_1", "sent")
    assert store.get_job("job_1")["callback_state"] == "sent"


def test_duplicate_documents_in_one_job_are_processed_once(store: Store):
    document = store.add_document(b"one", "a", None)["id"]
    store.create_job("job_2", [(document, "a"), (document, "again")], {}, None)
    assert [d["filename"] for d in store.get_job("job_2")["documents"]] == ["a"]


def test_training_runs_record_progress_and_metrics(store: Store):
    store.create_run("run_1", {"base_model": "default", "epochs": 2})
    store.claim("training_runs", "run_1", "w", 30)
    store.update_run("run_1", {"epoch": 1, "step": 3, "total_steps": 6}, None)
    store.update_run("run_1", {"epoch": 1, "step": 3, "total_steps": 6}, [{"epoch": 1, "loss": 0.5}])
    store.settle("training_runs", "run_1", "w", "succeeded", model_id="mdl_x")
    run = store.get_run("run_1")
    assert run["progress"]["step"] == 3 and run["metrics"] == [{"epoch": 1, "loss": 0.5}]
    assert (run["status"], run["model_id"]) == ("succeeded", "mdl_x") and run["finished"]


def test_writable_tries_a_file_and_the_write_lock(store: Store):
    assert store.writable()
    with closing(sqlite3.connect(store.db_path, isolation_level=None)) as holder:
        holder.execute("begin immediate")  # another writer holds the lock: still writable
        assert store.writable()
        holder.execute("rollback")
    with read_only(store.data_dir):
        assert not store.writable()
    assert store.writable() and list((store.data_dir / "tmp").iterdir()) == []
