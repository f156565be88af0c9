"""Training runs through HTTP: a synthetic FUNSD zip trains (in a child process) into a model that can be
activated and used by /v1/extract; bad datasets are refused before anything is queued."""

import io
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.service.api.routes.test_extract import problem
from tests.service.support import wait_for, words_document


def dataset_zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, "forms/" + path.relative_to(folder).as_posix())
    return buffer.getvalue()


def start_run(api: TestClient, data: bytes, **fields: str):
    return api.post(
        "/v1/training-runs", files={"dataset": ("data.zip", data, "application/zip")}, data=fields
    )


@pytest.mark.slow
def test_a_training_run_produces_a_model_that_serves(api: TestClient, synthetic_dataset: Path):
    response = start_run(api, dataset_zip(synthetic_dataset), epochs="1", validation_fraction="0.25")
    assert response.status_code == 202, response.text
    run = response.json()
    location = response.headers["location"]
    assert location == f"/v1/training-runs/{run['id']}"
    assert (run["status"], run["base_model"], run["epochs"], run["documents"]) == ("queued", "default", 1, 4)

    def finished() -> dict | None:
        started = time.monotonic()
        assert api.get("/healthz").status_code == 200
        assert time.monotonic() - started < 1.0  # the API stays responsive while the run trains
        current = api.get(location).json()
        return current if current["status"] in ("succeeded", "failed") else None

    run = wait_for(finished, timeout=300, interval=0.5)
    assert run["status"] == "succeeded", run["error"]
    dataset = api.app.state.services.store.dataset_dir(run["id"])
    wait_for(lambda: not dataset.exists(), timeout=30)  # the unpacked upload goes once the run has ended
    progress = run["progress"]
    assert progress["phase"] == "finished" and progress["epoch"] == 1
    assert (
        progress["step"] == progress["total_steps"] > 0
        and progress["prepared"] == progress["to_prepare"] == 4
    )
    (epoch,) = run["metrics"]
    assert epoch["epoch"] == 1 and epoch["loss"] > 0 and 0 <= epoch["entity_f1"] <= 1
    model = api.get(f"/v1/models/{run['model_id']}").json()
    assert model["source_run"] == run["id"] and not model["builtin"] and not model["active"]
    assert model["metrics"]["validation_documents"] == 1  # 4 forms, a quarter held out
    assert "only 1 validation form" in model["metrics"]["validation_warning"]
    assert api.post(f"/v1/models/{run['model_id']}/activate").json()["active"] is True
    result = api.post("/v1/extract", content=words_document(1)).json()
    assert result["model"]["id"] == run["model_id"] and result["pages"][0]["words"]
    assert 'docextract_training_runs{status="succeeded"} 1' in api.get("/metrics").text


@pytest.mark.slow
def test_a_run_with_recombined_copies_pretrains_then_fine_tunes(api: TestClient, synthetic_dataset: Path):
    data = dataset_zip(synthetic_dataset)
    response = start_run(api, data, epochs="1", validation_fraction="0.25", recombined_copies="2")
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    phases = []

    def finished() -> dict | None:
        current = api.get(location).json()
        phases.append(current["progress"]["phase"])
        return current if current["status"] in ("succeeded", "failed") else None

    run = wait_for(finished, timeout=300, interval=0.2)
    assert run["status"] == "succeeded", run["error"]
    assert run["recombined_copies"] == 2
    assert run["progress"]["phase"] == "finished" and run["progress"]["epoch"] == 1
    (epoch,) = run["metrics"]  # the pre-training epoch's validation is not the user's forms': not listed
    assert epoch["epoch"] == 1
    order = ["preparing", "pretraining", "fine-tuning", "exporting", "finished"]
    seen = [phase for n, phase in enumerate(phases) if n == 0 or phase != phases[n - 1]]
    assert "pretraining" in seen and seen == sorted(seen, key=order.index)  # in order, never back
    model = api.get(f"/v1/models/{run['model_id']}").json()
    assert model["source_run"] == run["id"]


def test_bad_datasets_are_refused_before_queueing(api: TestClient, synthetic_dataset: Path):
    problem(start_run(api, b"not a zip"), 422, "invalid-dataset")
    traversal = io.BytesIO()
    with zipfile.ZipFile(traversal, "w") as archive:
        archive.writestr("../../escape.json", "{}")
    problem(start_run(api, traversal.getvalue()), 422, "invalid-dataset")
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as archive:
        archive.writestr("readme.txt", "no annotations here")
    assert "annotations" in problem(start_run(api, empty.getvalue()), 422, "invalid-dataset")["detail"]
    data = dataset_zip(synthetic_dataset)
    problem(start_run(api, data, base_model="mdl_0123456789abcdef"), 404, "model-not-found")
    problem(start_run(api, data, base_model="gpt"), 422, "validation-error")
    problem(start_run(api, data, epochs="0"), 422, "validation-error")
    problem(start_run(api, data, validation_fraction="0.9"), 422, "validation-error")
    problem(start_run(api, data, recombined_copies="-1"), 422, "validation-error")
    problem(start_run(api, data, recombined_copies="201"), 422, "validation-error")
    problem(api.get("/v1/training-runs/run_" + "0" * 32), 404, "training-run-not-found")
    services = api.app.state.services
    assert services.store.counts("training_runs") == {}
    assert list((services.store.data_dir / "datasets").iterdir()) == []


def test_a_dataset_over_its_size_limit_is_refused_as_a_dataset(
    api_settings: Settings, synthetic_dataset: Path
):
    """Within the request's framing slack the dataset limit is still the dataset's: dataset-too-large."""
    data = dataset_zip(synthetic_dataset)
    settings = api_settings.model_copy(update={"max_dataset_bytes": len(data) - 1})
    with TestClient(create_app(settings)) as client:
        detail = problem(start_run(client, data), 413, "dataset-too-large")["detail"]
        assert f"the limit is {len(data) - 1}" in detail
        assert client.app.state.services.store.counts("training_runs") == {}


def test_a_run_that_cannot_start_fails_with_its_reason(
    api: TestClient, synthetic_dataset: Path, tmp_path: Path
):
    """A base model without trained weights: the child process reports why, the run is failed."""
    onnx_only = tmp_path / "onnx-only"
    services = api.app.state.services
    shutil.copytree(
        services.registry.entry("default").path, onnx_only, ignore=shutil.ignore_patterns("*.safetensors")
    )
    trained = services.registry.add(onnx_only, source_run=None)
    response = start_run(api, dataset_zip(synthetic_dataset), base_model=trained, epochs="1")
    run = wait_for(
        lambda: (r := api.get(response.headers["location"]).json())["status"] == "failed" and r, 120
    )
    assert "has no trained weights" in run["error"] and run["model_id"] is None
    dataset = services.store.dataset_dir(run["id"])
    wait_for(lambda: not dataset.exists(), timeout=30)  # a failed run keeps no copy of the upload either


def queued_runs(api: TestClient, synthetic_dataset: Path, count: int) -> list[str]:
    """Ids of `count` new runs, oldest first; the queue is stopped, so they stay queued (nothing trains)."""
    api.app.state.services.queue.stop()
    data = dataset_zip(synthetic_dataset)
    return [start_run(api, data, epochs=str(n + 1)).json()["id"] for n in range(count)]


def listed_runs(api: TestClient, **params: object) -> list[str]:
    response = api.get("/v1/training-runs", params=params)
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()["training_runs"]]


def test_runs_are_listed_newest_first_without_metrics(api: TestClient, synthetic_dataset: Path):
    ids = queued_runs(api, synthetic_dataset, 3)
    store = api.app.state.services.store
    store.claim("training_runs", ids[1], "test-worker", 30.0)  # this test plays the worker
    progress = {
        "phase": "fine-tuning",
        "prepared": 4,
        "to_prepare": 4,
        "epoch": 1,
        "step": 2,
        "total_steps": 4,
    }
    store.update_run(ids[1], progress, [{"epoch": 1, "loss": 0.5, "entity_f1": 0.4}])
    listing = api.get("/v1/training-runs").json()
    assert [run["id"] for run in listing["training_runs"]] == ids[::-1]  # same-second runs too
    assert (listing["total"], listing["limit"], listing["offset"]) == (3, 100, 0)
    for summary in listing["training_runs"]:
        full = api.get(f"/v1/training-runs/{summary['id']}").json()
        assert "metrics" not in summary
        assert summary == {name: value for name, value in full.items() if name != "metrics"}
    running = listing["training_runs"][1]
    assert (running["status"], running["epochs"], running["documents"]) == ("running", 2, 4)
    assert running["progress"] == progress | {"updated": None, "resumed_from_epoch": None}
    assert len(api.get(f"/v1/training-runs/{ids[1]}").json()["metrics"]) == 1


def test_run_pages_and_status_filter(api: TestClient, synthetic_dataset: Path):
    ids = queued_runs(api, synthetic_dataset, 5)
    store = api.app.state.services.store
    for run_id in (ids[0], ids[3]):
        store.claim("training_runs", run_id, "test-worker", 30.0)
        store.settle("training_runs", run_id, "test-worker", "failed", error="no luck")
    pages = [api.get("/v1/training-runs", params={"limit": 2, "offset": n}).json() for n in (0, 2, 4)]
    assert [len(page["training_runs"]) for page in pages] == [2, 2, 1]
    assert {page["total"] for page in pages} == {5}
    assert [run["id"] for page in pages for run in page["training_runs"]] == ids[::-1]
    failed = api.get("/v1/training-runs", params={"status": "failed"}).json()
    assert [run["id"] for run in failed["training_runs"]] == [ids[3], ids[0]] and failed["total"] == 2
    assert {run["error"] for run in failed["training_runs"]} == {"no luck"}
    assert listed_runs(api, status="queued") == [ids[4], ids[2], ids[1]]
    assert listed_runs(api, status="queued", limit=1, offset=2) == [ids[1]]
    assert listed_runs(api, status="succeeded") == []


def test_run_cursor_pages(api: TestClient, synthetic_dataset: Path):
    ids = queued_runs(api, synthetic_dataset, 3)
    first = api.get("/v1/training-runs", params={"limit": 2}).json()
    assert [run["id"] for run in first["training_runs"]] == [ids[2], ids[1]]
    rest = listed_runs(api, limit=2, after=first["next_cursor"])
    assert rest == [ids[0]]


def test_bad_run_list_requests(api: TestClient):
    body = problem(api.get("/v1/training-runs", params={"status": "finished"}), 422, "validation-error")
    assert [error["loc"] for error in body["errors"]] == [["query", "status"]]
    for params in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"offset": 2**70}):
        problem(api.get("/v1/training-runs", params=params), 422, "validation-error")
    listing = api.get("/v1/training-runs").json()
    assert (listing["training_runs"], listing["total"]) == ([], 0)


@pytest.mark.parametrize(
    "run_id", ["whatever", "run_" + "0" * 31, "RUN_" + "0" * 32, "run_" + "0" * 32 + "%0A"]
)
def test_a_malformed_run_id_is_not_found(api: TestClient, run_id: str):
    """Whatever its form, an id that names no training run is a 404 (never a 422)."""
    problem(api.get(f"/v1/training-runs/{run_id}"), 404, "training-run-not-found")
    problem(api.delete(f"/v1/training-runs/{run_id}"), 404, "training-run-not-found")


def test_queued_and_running_runs_ask_pollers_to_retry_later(api: TestClient, synthetic_dataset: Path):
    api.app.state.services.queue.stop()  # nothing trains: the runs stay queued
    response = start_run(api, dataset_zip(synthetic_dataset), epochs="1")
    assert response.status_code == 202 and response.headers["retry-after"] == "10"
    run_id = response.json()["id"]
    assert api.get(f"/v1/training-runs/{run_id}").headers["retry-after"] == "10"
    assert api.delete(f"/v1/training-runs/{run_id}").json()["status"] == "cancelled"
    assert "retry-after" not in api.get(f"/v1/training-runs/{run_id}").headers  # ended: nothing to wait for
