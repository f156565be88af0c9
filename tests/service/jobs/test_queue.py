"""The queue in both modes: batches complete, jobs survive restarts, dead workers' documents are retried,
duplicate deliveries change nothing. Embedded = SQLite queue consumed in the app; distributed = a real
redis-server and `docextract worker` processes."""

import io
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.deps import build_services
from service.main import create_app
from service.settings import Settings
from tests.fixtures.forms import SyntheticPage
from tests.service.support import DocextractProcess, free_port, is_ready, job_files, wait_for, wait_for_job


def post_job(client: TestClient, count: int, start: int = 0) -> str:
    response = client.post("/v1/jobs", files=job_files(count, start))
    assert response.status_code == 202, response.text
    return response.headers["location"]


def assert_all_succeeded(client: TestClient, job: dict, count: int) -> None:
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"done": count, "total": count, "pages_done": count}
    assert {d["status"] for d in job["documents"]} == {"succeeded"}
    result = client.get(job["documents"][-1]["result_url"]).json()
    assert result["document_id"] == job["documents"][-1]["document_id"] and result["pages"][0]["words"]


def test_a_batch_of_20_completes_on_the_embedded_queue(api: TestClient):
    job = wait_for_job(api, post_job(api, 20))
    assert_all_succeeded(api, job, 20)
    depth = api.get("/metrics").text
    assert 'docextract_queue_depth{queue="documents"} 0' in depth
    assert 'docextract_pages_processed_total{source="job"} 20' in depth


def test_a_batch_of_20_completes_on_redis_with_a_worker_process(
    redis_url: str, api_settings: Settings, tmp_path: Path
):
    settings = api_settings.model_copy(update={"redis_url": redis_url, "queue_workers": 2})
    with TestClient(create_app(settings)) as client:
        location = post_job(client, 20)
        assert client.get(location).json()["status"] == "queued"  # the API only enqueues
        assert client.get("/readyz").json()["checks"]["queue"] is True
        port = free_port()
        command = ["worker", "--queues", "documents", "--metrics-port", str(port)]
        with DocextractProcess(command, settings, tmp_path / "worker.log") as worker:
            job = wait_for_job(client, location, timeout=90)
            assert "consuming documents (redis queue)" in worker.output()
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert_all_succeeded(client, job, 20)
        assert 'docextract_pages_processed_total{source="job"} 20' in metrics
        assert 'docextract_queue_depth{queue="documents"} 0' in metrics


def test_a_job_posted_while_redis_is_down_runs_once_it_is_back(api_settings: Settings, tmp_path: Path):
    port = free_port()
    settings = api_settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/0", "lease_s": 1.0})
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["checks"]["queue"] is False
        location = post_job(client, 3)  # stored; the queue gets it later
        command = [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        redis = subprocess.Popen([*command, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
        try:
            with DocextractProcess(["worker"], settings, tmp_path / "worker.log"):
                assert_all_succeeded(client, wait_for_job(client, location, timeout=60), 3)
        finally:
            redis.terminate()
            redis.wait(timeout=10)


def test_embedded_jobs_survive_a_restart(api_settings: Settings):
    with TestClient(create_app(api_settings)) as client:
        client.app.state.services.queue.stop()  # the service goes down before it gets to the job
        location = post_job(client, 5)
    with TestClient(create_app(api_settings)) as client:
        assert_all_succeeded(client, wait_for_job(client, location), 5)


def test_a_document_whose_worker_died_is_retried_and_completes(api_settings: Settings):
    settings = api_settings.model_copy(update={"lease_s": 0.6})
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services
        services.queue.stop()
        location = post_job(client, 1)
        item = services.store.get_job(location.rsplit("/", 1)[1])["documents"][0]["id"]
        # A worker takes the document, then dies: its lease is never renewed.
        assert services.store.claim("job_documents", item, "dead-worker:1", lease_s=0.3)
        services.queue.start()
        job = wait_for_job(client, location, timeout=30)
        assert_all_succeeded(client, job, 1)
        assert services.store.job_item(item)["attempts"] == 2


def test_a_task_taken_by_a_worker_that_died_before_claiming_it_is_queued_again(api_settings: Settings):
    settings = api_settings.model_copy(update={"lease_s": 0.6})
    with TestClient(create_app(settings)) as client:
        services = client.app.state.services
        services.queue.stop()
        location = post_job(client, 1)
        assert services.queue.hueys["documents"].dequeue() is not None  # taken from the queue, never run
        services.queue.start()
        assert_all_succeeded(client, wait_for_job(client, location, timeout=30), 1)


def test_a_duplicate_delivery_changes_nothing(api: TestClient):
    job = wait_for_job(api, post_job(api, 1))
    services = api.app.state.services
    item = services.store.get_job(job["id"])["documents"][0]
    services.queue.enqueue_document(item["id"])  # at-least-once: the same task again
    wait_for(lambda: services.queue.depth()["documents"] == 0)
    services.worker.process_document(item["id"])  # and once more, synchronously
    again = services.store.get_job(job["id"])["documents"][0]
    assert (again["attempts"], again["status"], again["result_key"]) == (1, "succeeded", item["result_key"])
    assert len(list((services.store.data_dir / "results").rglob("*.json"))) == 1


@pytest.mark.slow
def test_a_killed_redis_worker_loses_nothing(
    redis_url: str, api_settings: Settings, tmp_path: Path, synthetic_pages: list[SyntheticPage]
):
    """A worker is SIGKILLed in the middle of a document (OCR of a scanned form); another worker takes the
    document over once the lease runs out, and the job completes with the document processed once."""
    settings = api_settings.model_copy(update={"redis_url": redis_url, "lease_s": 2.0})
    image = io.BytesIO()
    synthetic_pages[0].image.save(image, "PNG")
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/jobs", files=[("files", ("form.png", image.getvalue(), "image/png"))])
        location = response.headers["location"]
        first = DocextractProcess(["worker"], settings, tmp_path / "first.log").start()
        try:
            wait_for(lambda: client.get(location).json()["documents"][0]["status"] == "running", 60, 0.02)
            first.kill()
        finally:
            first.stop()
        assert client.get(location).json()["status"] == "running"
        with DocextractProcess(["worker"], settings, tmp_path / "second.log"):
            job = wait_for_job(client, location, timeout=120)
        assert job["status"] == "succeeded", job
        services = client.app.state.services
        item = services.store.get_job(job["id"])["documents"][0]
        assert item["attempts"] == 2
        words = client.get(job["documents"][0]["result_url"]).json()["pages"][0]["words"]
        assert len(words) > 10


def test_a_real_server_killed_mid_batch_finishes_the_batch_after_a_restart(
    api_settings: Settings, tmp_path: Path
):
    """`docextract serve` (uvicorn) gets a batch, is SIGKILLed, and is started again on the same data."""
    settings = api_settings.model_copy(update={"port": free_port(), "lease_s": 1.0})
    base = f"http://127.0.0.1:{settings.port}"

    server = DocextractProcess(["serve"], settings, tmp_path / "serve.log").start()
    try:
        wait_for(lambda: is_ready(base), 60, 0.2)
        response = httpx.post(f"{base}/v1/jobs", files=job_files(20), timeout=30)
        assert response.status_code == 202
        server.kill()
    finally:
        server.stop()
    location = base + response.headers["location"]
    with DocextractProcess(["serve"], settings, tmp_path / "serve-again.log"):
        wait_for(lambda: is_ready(base), 60, 0.2)
        with httpx.Client() as client:
            job = wait_for_job(client, location, timeout=60)
            assert job["status"] == "succeeded", job
            assert job["progress"] == {"done": 20, "total": 20, "pages_done": 20}
            assert len({d["document_id"] for d in job["documents"]}) == 20


def scanned_and_json_files(pages: list[SyntheticPage]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Scanned forms (OCR: seconds each) interleaved with JSON pages (milliseconds each)."""
    files = []
    for number, page in enumerate(pages):
        image = io.BytesIO()
        page.image.save(image, "PNG")
        files.append(("files", (f"form{number}.png", image.getvalue(), "image/png")))
        files += job_files(1, start=100 + number)
    return files


@pytest.mark.slow
def test_a_batch_survives_a_worker_killed_mid_job_all_real_processes(
    redis_url: str, api_settings: Settings, tmp_path: Path, synthetic_pages: list[SyntheticPage]
):
    """`docextract serve` and `docextract worker` as processes on a real redis-server: the worker is
    SIGKILLed while it holds a document and others are done; a new worker finishes the batch; every
    document succeeds, and each has exactly one result (the one that was interrupted ran twice)."""
    settings = api_settings.model_copy(update={"redis_url": redis_url, "lease_s": 2.0, "port": free_port()})
    base = f"http://127.0.0.1:{settings.port}"
    files = scanned_and_json_files(synthetic_pages)
    with DocextractProcess(["serve"], settings, tmp_path / "serve.log"), httpx.Client() as client:
        wait_for(lambda: server_ready(client, base), 60, 0.2)
        response = client.post(f"{base}/v1/jobs", files=files, timeout=60)
        assert response.status_code == 202, response.text
        location = base + response.headers["location"]
        first = DocextractProcess(["worker"], settings, tmp_path / "first.log").start()
        try:
            wait_for(lambda: mid_job(client.get(location).json()), 120, 0.02)
            first.kill()
        finally:
            first.stop()
        after_kill = client.get(location).json()  # what the dead worker left: nothing moves now
        interrupted = [d["status"] for d in after_kill["documents"]].count("running")
        assert after_kill["status"] == "running" and interrupted >= 1
        with DocextractProcess(["worker"], settings, tmp_path / "second.log"):
            job = wait_for_job(client, location, timeout=180)
    count = len(files)
    assert job["status"] == "succeeded"
    assert job["progress"] == {"done": count, "total": count, "pages_done": count}
    assert {d["status"] for d in job["documents"]} == {"succeeded"}
    store = build_services(settings).store
    items = store.get_job(job["id"])["documents"]
    assert sum(item["attempts"] for item in items) == len(files) + interrupted
    assert len({item["result_key"] for item in items}) == len(files)
    assert len(list((settings.data_dir / "results").rglob("*.json"))) == len(files)


def server_ready(client: httpx.Client, base: str) -> bool:
    try:
        return client.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def mid_job(job: dict) -> list[str] | None:
    """The documents' statuses once some are done and a scanned form (seconds of OCR, so still running when
    the worker is killed a moment later; a JSON page can finish in between) is running, else None."""
    statuses = [d["status"] for d in job["documents"]]
    scanning = any(d["status"] == "running" and d["filename"].endswith(".png") for d in job["documents"])
    return statuses if "succeeded" in statuses and scanning else None
