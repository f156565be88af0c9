from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import __version__
from service.errors import PROBLEM_CONTENT_TYPE
from service.main import create_app
from service.settings import Settings
from tests.service.support import wait_for


@pytest.fixture
def client(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", default_model_dir=tmp_path / "no-model")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_healthz(client: TestClient):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}


def test_readyz_creates_the_data_dir_and_reports_ready(api: TestClient, tmp_path: Path):
    assert (tmp_path / "data").is_dir()
    response = wait_for(lambda: (r := api.get("/readyz")).status_code == 200 and r)
    assert response.json() == {"ready": True, "checks": {"data_dir": True, "queue": True, "model": True}}


def test_readyz_is_503_without_a_model(client: TestClient):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "checks": {"data_dir": True, "queue": True, "model": False}}


def test_readyz_is_503_when_the_data_dir_is_gone(api: TestClient, tmp_path: Path):
    # moved away in one step: deleting it file by file raced the app's queue consumer, which can create a
    # file in it meanwhile ("Directory not empty")
    (tmp_path / "data").rename(tmp_path / "data-gone")
    response = api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["ready"] is False and response.json()["checks"]["data_dir"] is False


def test_unknown_route_is_a_problem_document(client: TestClient):
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"].endswith("/not-found")
    assert body["status"] == 404 and body["instance"] == "/v1/nothing-here"
    assert {"title", "detail"} <= set(body)


def test_wrong_method_is_a_problem_document(client: TestClient):
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["type"].endswith("/method-not-allowed")
    assert response.headers["allow"] == "GET"
    # Two routes share the path: Allow names the methods of both (Starlette names only the first's).
    assert client.patch("/v1/documents").headers["allow"] == "GET, POST"


def test_the_openapi_document_describes_problem_documents(client: TestClient):
    schema = client.get("/openapi.json").json()
    responses = schema["paths"]["/v1/extract"]["post"]["responses"]
    for status in ("400", "401", "413", "415", "422", "503"):
        assert set(responses[status]["content"]) == {PROBLEM_CONTENT_TYPE}, status
        assert responses[status]["content"][PROBLEM_CONTENT_TYPE]["schema"]["$ref"].endswith("/Problem")
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert set(schema["paths"]["/readyz"]["get"]["responses"]["503"]["content"]) == {"application/json"}


def test_building_the_app_touches_no_disk(tmp_path: Path):
    create_app(Settings(data_dir=tmp_path / "never"))
    assert not (tmp_path / "never").exists()


def test_no_cors_headers_by_default(client: TestClient):
    response = client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/v1/extract",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allows_the_configured_origins_only(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path / "data", default_model_dir=tmp_path / "none", cors_origins=["https://app.example"],
        api_keys=["secret-key"],
    )  # fmt: skip
    with TestClient(create_app(settings)) as client:
        asked = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}
        preflight = client.options("/v1/extract", headers={"Origin": "https://app.example", **asked})
        assert preflight.status_code == 200  # a preflight carries no key and needs none
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
        refused = client.options("/v1/extract", headers={"Origin": "https://evil.example", **asked})
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        response = client.get("/v1/documents", headers={"Origin": "https://app.example"})
        assert response.status_code == 401  # CORS does not replace the key, and errors carry the headers
        assert response.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
