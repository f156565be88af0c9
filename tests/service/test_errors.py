from pathlib import Path

from fastapi.testclient import TestClient

from service import errors
from service.errors import PROBLEM_CONTENT_TYPE, NotReadyError
from service.main import create_app
from service.settings import Settings


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
