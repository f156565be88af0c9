"""Optional API-key auth: off by default; with keys, every /v1 route needs one (X-API-Key or Bearer), the
probes and metrics stay open, and the OpenAPI document declares both schemes."""

import hmac
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api import auth
from service.api.auth import key_matches
from service.main import create_app
from service.settings import Settings
from tests.service.api.routes.test_extract import problem

KEYS = ["k-first-0123456789", "k-second-abcdefghij"]


@pytest.fixture
def locked(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", default_model_dir=tmp_path / "none", api_keys=KEYS)
    with TestClient(create_app(settings)) as client:
        yield client


def test_without_a_key_every_v1_route_is_a_401_problem(locked: TestClient):
    for method, path in [("get", "/v1/models"), ("get", "/v1/documents"), ("post", "/v1/extract"),
                         ("post", "/v1/jobs"), ("get", "/v1/jobs/job_" + "0" * 32),
                         ("post", "/v1/training-runs"), ("delete", "/v1/documents/" + "a" * 64),
                         ("get", "/v1/jobs"), ("get", "/v1/training-runs")]:  # fmt: skip
        response = getattr(locked, method)(path)
        body = problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "X-API-Key" in body["detail"]


def test_a_wrong_key_is_a_401(locked: TestClient):
    for headers in ({"X-API-Key": "nope"}, {"Authorization": "Bearer nope"}, {"X-API-Key": KEYS[0][:-1]},
                    {"X-API-Key": KEYS[0] + "x"}, {"Authorization": f"Basic {KEYS[0]}"}):  # fmt: skip
        problem(locked.get("/v1/documents", headers=headers), 401, "unauthorized")


def test_any_configured_key_in_either_header_passes(locked: TestClient):
    for headers in (
        {"X-API-Key": KEYS[0]},
        {"X-API-Key": KEYS[1]},
        {"Authorization": f"Bearer {KEYS[1]}"},
        {"authorization": f"bearer {KEYS[0]}"},
        {"X-API-Key": "bad", "Authorization": f"Bearer {KEYS[0]}"},
    ):
        response = locked.get("/v1/documents", headers=headers)
        assert response.status_code == 200, (headers, response.text)


def test_the_lists_answer_with_a_key(locked: TestClient):
    lists = {"/v1/documents": "documents", "/v1/jobs": "jobs", "/v1/training-runs": "training_runs"}
    for path, name in lists.items():
        problem(locked.get(path, headers={"X-API-Key": "nope"}), 401, "unauthorized")
        response = locked.get(path, headers={"Authorization": f"Bearer {KEYS[1]}"})
        assert response.status_code == 200, response.text
        assert (response.json()[name], response.json()["total"]) == ([], 0)


def test_probes_and_metrics_need_no_key(locked: TestClient):
    assert locked.get("/healthz").status_code == 200
    assert locked.get("/readyz").status_code == 503  # no model here, but an answer, not a 401
    assert locked.get("/metrics").status_code == 200


def test_without_keys_auth_is_off(tmp_path: Path):
    with TestClient(create_app(Settings(data_dir=tmp_path / "data"))) as client:
        assert client.get("/v1/documents").status_code == 200


def test_keys_come_from_the_environment_as_a_list_or_comma_separated(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DOCEXTRACT_API_KEYS", " a1 , b2,, ")
    assert Settings().api_keys == ["a1", "b2"]
    monkeypatch.setenv("DOCEXTRACT_API_KEYS", '["x,1", "y"]')
    assert Settings().api_keys == ["x,1", "y"]
    monkeypatch.setenv("DOCEXTRACT_API_KEYS", "")
    assert Settings().api_keys == []
    assert "a1" not in repr(Settings(api_keys=["a1"]))


def test_every_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch):
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", recording)
    assert key_matches(KEYS[0], KEYS) and not key_matches("nope", KEYS)
    assert len(calls) == 4  # no early exit on the first match


def test_the_openapi_document_declares_the_schemes(tmp_path: Path):
    schema = create_app(Settings(data_dir=tmp_path / "data")).openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                       "description": schemes["APIKeyHeader"]["description"]}  # fmt: skip
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert {"APIKeyHeader": []} in schema["paths"]["/v1/extract"]["post"]["security"]
    assert "security" not in schema["paths"]["/healthz"]["get"]
    assert "security" not in schema["paths"]["/metrics"]["get"]
