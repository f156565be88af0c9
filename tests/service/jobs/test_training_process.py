"""The training child as a process: its environment after the service has OCRed pages (a real `docextract
serve`), the stall watchdog and cancelling (the child is stopped, its folders removed, its lease released)."""

import io
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.jobs.datasets import unpack_dataset
from service.jobs.training import run_in_child, work_dir
from service.main import create_app
from service.settings import Settings
from tests.fixtures.forms import SyntheticPage
from tests.service.api.routes.test_extract import problem
from tests.service.api.routes.test_training import dataset_zip, queued_runs, start_run
from tests.service.support import DocextractProcess, free_port, is_ready, wait_for

FINAL = ("succeeded", "failed", "cancelled")


def training_child(run_id: str) -> int | None:
    """The pid of the process training `run_id`, if one is running."""
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if b"service.jobs.training" in command and run_id.encode() in command:
            return int(entry.name)
    return None


def environment_of(pid: int) -> dict[str, str]:
    pairs = (Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")).split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def is_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # a zombie has ended too
    except OSError:
        return True


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_a_training_run_after_ocr_finishes_and_its_process_gets_its_own_threads(
    tmp_path: Path, serving_model: Path, synthetic_pages: list[SyntheticPage], synthetic_dataset: Path
):
    """The real sequence: a `docextract serve` process OCRs an image, then trains with 2 torch threads.
    (An OCR-wide OMP_THREAD_LIMIT=1 inherited by the training child deadlocked oneDNN's convolution
    backward pass on AVX-512 CPUs: the run stayed at step 0 forever.)"""
    settings = Settings(
        data_dir=tmp_path / "data",
        default_model_dir=serving_model,
        port=free_port(),
        model_threads=1,
        ocr_workers=1,
        train_threads=2,
        queue_poll_s=0.1,
    )
    base = f"http://127.0.0.1:{settings.port}"
    with (
        DocextractProcess(["serve"], settings, tmp_path / "serve.log") as server,
        httpx.Client(base_url=base, timeout=120) as client,
    ):
        wait_for(lambda: is_ready(base), 90, 0.2)
        page = synthetic_pages[0].image
        extracted = client.post("/v1/extract", files={"file": ("form.png", png(page), "image/png")})
        assert extracted.status_code == 200, extracted.text
        assert extracted.json()["pages"][0]["words"]  # tesseract ran in the server
        data = dataset_zip(synthetic_dataset)
        fields = {"epochs": "3", "validation_fraction": "0.25"}
        response = client.post(
            "/v1/training-runs", files={"dataset": ("d.zip", data, "application/zip")}, data=fields
        )
        assert response.status_code == 202, response.text
        run_id = response.json()["id"]
        pid = wait_for(lambda: training_child(run_id), 120, 0.05)
        env = environment_of(pid)
        assert "OMP_THREAD_LIMIT" not in env
        assert (env["OMP_NUM_THREADS"], env["MKL_NUM_THREADS"], env["OMP_WAIT_POLICY"]) == (
            "2",
            "2",
            "PASSIVE",
        )
        run = wait_for(lambda: finished(client, run_id), 240, 0.5)  # bounded: a hang fails here
        assert run["status"] == "succeeded", (run["error"], server.output()[-2000:])
        assert run["progress"]["phase"] == "finished"


def finished(client: httpx.Client | TestClient, run_id: str) -> dict | None:
    run = client.get(f"/v1/training-runs/{run_id}").json()
    return run if run["status"] in FINAL else None


@pytest.fixture
def api_with_stall(api_settings: Settings) -> Iterator[TestClient]:
    settings = api_settings.model_copy(update={"train_stall_s": 20.0})
    with TestClient(create_app(settings)) as client:
        yield client


def long_run_in_fine_tuning(api: TestClient, synthetic_dataset: Path) -> tuple[str, int]:
    """A run of many epochs that has taken fine-tuning steps; its id and its training process."""
    response = start_run(api, dataset_zip(synthetic_dataset), epochs="500", validation_fraction="0.25")
    assert response.status_code == 202, response.text
    run_id = response.json()["id"]

    def stepping() -> bool:
        progress = api.get(f"/v1/training-runs/{run_id}").json()["progress"]
        return progress["phase"] == "fine-tuning" and progress["step"] > 0

    wait_for(stepping, 180, 0.1)
    return run_id, wait_for(lambda: training_child(run_id), 10, 0.05)


@pytest.mark.slow
def test_a_stalled_run_is_stopped_and_failed_with_its_phase(
    api_with_stall: TestClient, synthetic_dataset: Path
):
    api = api_with_stall
    run_id, pid = long_run_in_fine_tuning(api, synthetic_dataset)
    os.kill(pid, signal.SIGSTOP)  # a deadlock, as far as anyone outside can tell
    run = wait_for(lambda: finished(api, run_id), 90, 0.5)
    assert run["status"] == "failed" and "stalled" in run["error"], run["error"]
    assert "no progress for 20 s in phase fine-tuning" in run["error"]
    services = api.app.state.services
    assert wait_for(lambda: is_gone(pid), 10)
    wait_for(lambda: not work_dir(services.settings, run_id).exists(), 10)
    wait_for(lambda: not services.store.dataset_dir(run_id).exists(), 10)
    assert str(services.settings.data_dir.resolve()) not in run["error"]


@pytest.mark.slow
def test_cancelling_a_running_run_stops_its_process(api: TestClient, synthetic_dataset: Path):
    run_id, pid = long_run_in_fine_tuning(api, synthetic_dataset)
    response = api.delete(f"/v1/training-runs/{run_id}")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled" and response.json()["finished"]
    services = api.app.state.services
    assert wait_for(lambda: is_gone(pid), 10)
    wait_for(lambda: not work_dir(services.settings, run_id).exists(), 10)
    assert not services.store.dataset_dir(run_id).exists()
    row = services.store.get_run(run_id)
    assert (row["status"], row["claim"], row["lease_until"], row["model_id"]) == (
        "cancelled",
        None,
        None,
        None,
    )
    again = api.delete(f"/v1/training-runs/{run_id}")  # idempotent
    assert again.status_code == 200 and again.json() == response.json()


def test_cancelling_queued_and_finished_runs(api: TestClient, synthetic_dataset: Path):
    queued, done = queued_runs(api, synthetic_dataset, 2)
    services = api.app.state.services
    response = api.delete(f"/v1/training-runs/{queued}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert not services.store.dataset_dir(queued).exists()
    assert services.store.claim("training_runs", queued, "late-worker", 30.0) is None  # never starts
    services.store.claim("training_runs", done, "worker", 30.0)
    services.store.settle("training_runs", done, "worker", "succeeded", model_id="mdl_0123456789abcdef")
    body = problem(api.delete(f"/v1/training-runs/{done}"), 409, "training-run-finished")
    assert "succeeded" in body["detail"]
    problem(api.delete("/v1/training-runs/run_" + "0" * 32), 404, "training-run-not-found")


@pytest.mark.slow
def test_a_run_whose_worker_is_killed_resumes_from_its_last_epoch(
    redis_url: str, api_settings: Settings, tmp_path: Path, synthetic_dataset: Path
):
    """A `docextract worker` is SIGKILLed while its run trains; its child stops by itself, and a second
    worker takes the run over once the lease runs out and resumes from the last finished epoch."""
    settings = api_settings.model_copy(update={"redis_url": redis_url, "lease_s": 3.0})
    command = ["worker", "--queues", "training"]
    with TestClient(create_app(settings)) as client:
        response = start_run(client, dataset_zip(synthetic_dataset), epochs="12", validation_fraction="0.25")
        run_id = response.json()["id"]
        first = DocextractProcess(command, settings, tmp_path / "first.log").start()
        try:
            wait_for(lambda: len(client.get(f"/v1/training-runs/{run_id}").json()["metrics"]) >= 2, 240, 0.1)
            pid = training_child(run_id)
            first.kill()
        finally:
            first.stop()
        assert pid is not None and wait_for(lambda: is_gone(pid), 15)  # the orphan stops itself
        with DocextractProcess(command, settings, tmp_path / "second.log"):
            run = wait_for(lambda: finished(client, run_id), 300, 0.5)
        assert run["status"] == "succeeded", run["error"]
        assert (run["progress"]["resumed_from_epoch"] or 0) >= 2
        assert [epoch["epoch"] for epoch in run["metrics"]] == list(range(1, 13))
        services = client.app.state.services
        assert services.store.get_run(run_id)["attempts"] == 2
        models = [m for m in client.get("/v1/models").json()["models"] if m["source_run"] == run_id]
        assert [m["id"] for m in models] == [run["model_id"]]


def test_a_retry_after_the_model_was_registered_registers_no_second_model(
    api: TestClient, synthetic_dataset: Path, serving_model: Path, tmp_path: Path
):
    """The worker died after the child registered the model but before the run was marked done: the retry
    finds that model and finishes with it, without training again."""
    services = api.app.state.services
    run_id = "run_" + "2" * 32
    unpack_dataset(dataset_zip(synthetic_dataset), services.store.dataset_dir(run_id), services.settings)
    options = {"base_model": "default", "epochs": 50, "validation_fraction": 0.25, "recombined_copies": 0}
    services.store.create_run(run_id, options | {"documents": 4})
    model_id = services.registry.add(shutil.copytree(serving_model, tmp_path / "first"), source_run=run_id)
    again = services.registry.add(shutil.copytree(serving_model, tmp_path / "again"), source_run=run_id)
    assert again == model_id and not (tmp_path / "again").exists()
    assert services.store.claim("training_runs", run_id, "retry", 60.0) is not None  # the retried attempt
    assert run_in_child(services.store, services.settings, run_id, "retry", threading.Event()) is False
    run = api.get(f"/v1/training-runs/{run_id}").json()
    assert (run["status"], run["model_id"], run["metrics"]) == ("succeeded", model_id, [])
    assert run["progress"]["epoch"] == 0  # nothing was trained again
    models = [m for m in api.get("/v1/models").json()["models"] if m["source_run"] == run_id]
    assert [m["id"] for m in models] == [model_id]
    assert not services.store.dataset_dir(run_id).exists()
