from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from service import errors
from service.errors import PROBLEM_CONTENT_TYPE, NotReadyError
from service.main import create_app
from service.settings import Settings
from tests.fixtures import broken
from tests.service.support import read_only, serving, wait_for, wait_for_job, words_document


def _app_with_test_routes(tmp_path: Path):
    app = create_app(Settings(data_dir=tmp_path))

    @app.get("/raise-domain-error")
    async def raise_domain_error() -> None:
        raise NotReadyError("no model is loaded")

    @app.get("/needs-int")
    async def needs_int(count: int) -> int:
        return count

    return app


def test_domain_errors_map_to_their_status_and_kind(tmp_path: Path):
    with TestClient(_app_with_test_routes(tmp_path)) as client:
        response = client.get("/raise-domain-error")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"].endswith("/not-ready")
    assert body["title"] == "Service Unavailable"
    assert body["detail"] == "no model is loaded"


def test_validation_errors_are_problem_documents_with_locations(tmp_path: Path):
    with TestClient(_app_with_test_routes(tmp_path)) as client:
        response = client.get("/needs-int", params={"count": "many"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"].endswith("/validation-error")
    assert body["errors"][0]["loc"] == ["query", "count"]
    assert "query.count" in body["detail"]


def test_document_errors_have_distinct_kinds_and_client_statuses():
    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.DocumentError) and c is not errors.DocumentError
    ]
    assert len(classes) >= 10
    assert len({c.kind for c in classes}) == len(classes)
    assert all(400 <= c.status < 500 for c in classes)
    assert errors.UnsupportedFormatError.status == 415 and errors.TooManyPixelsError.status == 413


def test_an_unexpected_error_is_a_problem_document_that_closes_the_connection(api_settings: Settings):
    """The server closes the connection after a 500: the answer says so, so a client does not send its next
    request into the closing connection (and get a reset)."""

    def failing_extraction(*_: object) -> None:
        raise RuntimeError("a bug")

    with (
        serving(create_app(api_settings, extract=failing_extraction)) as base,
        httpx.Client(base_url=base) as client,
    ):
        wait_for(lambda: client.get("/readyz").status_code == 200, 60)
        for _ in range(3):
            response = client.post("/v1/extract", content=words_document(1))
            assert response.status_code == 500
            assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
            assert response.json()["type"].endswith("/internal-error")
            assert response.headers["connection"] == "close"
            assert client.get("/healthz").status_code == 200  # the same client, on a new connection


def test_a_read_only_data_folder_is_storage_unavailable_on_every_route(api_settings: Settings):
    """Reads included: each route that needs the data folder answers 503 `storage-unavailable`, the others
    work; `/readyz` says the data folder is not writable, `/healthz` that the process lives."""
    with TestClient(create_app(api_settings), raise_server_exceptions=False) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200, 60)
        document = client.post("/v1/documents", files={"file": ("a.json", words_document(1))}).json()["id"]
        job = client.post("/v1/jobs", data={"document_ids": document}).headers["location"]
        wait_for_job(client, job)
        dataset = {"dataset": ("d.zip", broken.dataset_with_image(broken.image("PNG")), "application/zip")}
        requests = [
            ("GET", "/v1/documents", {}),
            ("GET", f"/v1/documents/{document}", {}),
            ("GET", f"/v1/documents/{document}/result", {}),
            ("GET", f"/v1/documents/{document}/pages/1/overlay.png", {}),
            ("DELETE", f"/v1/documents/{document}", {}),
            ("POST", "/v1/documents", {"files": {"file": ("b.json", words_document(2))}}),
            ("GET", "/v1/jobs", {}),
            ("GET", job, {}),
            ("POST", "/v1/jobs", {"files": {"files": ("c.json", words_document(3))}}),
            ("GET", "/v1/training-runs", {}),
            ("POST", "/v1/training-runs", {"files": dataset}),
            ("GET", "/metrics", {}),
        ]
        with read_only(api_settings.data_dir):
            for method, path, arguments in requests:
                response = client.request(method, path, **arguments)
                assert response.status_code == 503, (method, path, response.text)
                assert response.json()["type"].endswith("/storage-unavailable"), (method, path)
            assert (
                client.post("/v1/extract", content=words_document(4)).status_code == 200
            )  # needs no storage
            assert client.get("/v1/models").status_code == 200
            assert client.get("/healthz").status_code == 200
            readiness = client.get("/readyz")
            assert readiness.status_code == 503 and readiness.json()["checks"]["data_dir"] is False
        assert client.get("/readyz").status_code == 200
        assert client.get(f"/v1/documents/{document}").status_code == 200
