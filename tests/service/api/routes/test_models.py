"""The model registry through HTTP: list, inspect, activate, delete; /v1/extract follows the active model."""

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.api.routes.test_extract import problem
from tests.service.support import words_document


def register(api: TestClient, serving_model: Path, tmp_path: Path, name: str) -> str:
    """A second model in the registry (as a finished training run leaves it)."""
    copy = shutil.copytree(serving_model, tmp_path / name)
    return api.app.state.services.registry.add(copy, source_run=f"run_{name}")


def extract_model(api: TestClient, model: str | None = None) -> str:
    params = {"model": model} if model else {}
    response = api.post("/v1/extract", params=params, content=words_document(1))
    assert response.status_code == 200, response.text
    return response.json()["model"]["id"]


def test_the_default_model_is_listed_and_active(api: TestClient):
    listing = api.get("/v1/models").json()
    assert listing["active"] == "default"
    (model,) = listing["models"]
    assert model["id"] == "default" and model["builtin"] and model["active"] and model["source_run"] is None
    assert model["labels"] == ["answer", "header", "question"] and "validation_entity_f1" in model["metrics"]
    assert api.get("/v1/models/default").json() == model


def test_activate_and_delete(api: TestClient, serving_model: Path, tmp_path: Path):
    trained = register(api, serving_model, tmp_path, "a")
    assert api.get(f"/v1/models/{trained}").json()["source_run"] == "run_a"
    assert extract_model(api) == "default" and extract_model(api, trained) == trained
    activated = api.post(f"/v1/models/{trained}/activate")
    assert activated.status_code == 200 and activated.json()["active"] is True
    assert api.get("/v1/models").json()["active"] == trained
    assert extract_model(api) == trained
    problem(api.delete(f"/v1/models/{trained}"), 409, "model-in-use")
    problem(api.delete("/v1/models/default"), 409, "model-in-use")
    assert api.post("/v1/models/default/activate").json()["active"] is True
    assert extract_model(api) == "default"
    assert api.delete(f"/v1/models/{trained}").status_code == 204
    problem(api.get(f"/v1/models/{trained}"), 404, "model-not-found")
    assert [m["id"] for m in api.get("/v1/models").json()["models"]] == ["default"]


def test_unknown_and_broken_models(api: TestClient, serving_model: Path, tmp_path: Path):
    problem(api.get("/v1/models/mdl_0123456789abcdef"), 404, "model-not-found")
    problem(api.post("/v1/models/mdl_0123456789abcdef/activate"), 404, "model-not-found")
    problem(api.delete("/v1/models/mdl_0123456789abcdef"), 404, "model-not-found")
    problem(api.get("/v1/models/../etc"), 404, "not-found")
    problem(api.get("/v1/models/nonsense"), 404, "model-not-found")
    broken = register(api, serving_model, tmp_path, "b")
    (api.app.state.services.registry.root / broken / "model.int8.onnx").write_bytes(b"junk")
    body = problem(api.post(f"/v1/models/{broken}/activate"), 503, "model-load-failed")
    assert str(api.app.state.services.settings.data_dir.resolve()) not in body["detail"]
    assert api.get("/v1/models").json()["active"] == "default"


@pytest.mark.parametrize(
    "model_id", ["nonsense", "Default", "mdl_0123", "MDL_0123456789ABCDEF", "mdl_0123456789abcdef%0A"]
)
def test_a_malformed_model_id_is_not_found(api: TestClient, model_id: str):
    """Whatever its form, an id that names no model is a 404 on every model route (never a 422)."""
    problem(api.get(f"/v1/models/{model_id}"), 404, "model-not-found")
    problem(api.post(f"/v1/models/{model_id}/activate"), 404, "model-not-found")
    problem(api.delete(f"/v1/models/{model_id}"), 404, "model-not-found")
