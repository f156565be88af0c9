"""Request ids: a sane client id is kept, anything else replaced; the id is in the response header, in
problem documents and in the access record."""

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings
from tests.service.support import wait_for, words_document


@pytest.fixture
def client(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", default_model_dir=tmp_path / "none")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_a_valid_client_id_is_kept(client: TestClient):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.2:x_y"})
    assert response.headers["x-request-id"] == "lb-7f3a.2:x_y"


@pytest.mark.parametrize("given", ["", "a" * 129, "bad id", "x\u00e9", "a;rm -rf", "<script>"])
def test_an_invalid_id_is_replaced_by_a_new_one(client: TestClient, given: str):
    headers = {"X-Request-ID": given.encode("utf-8")}
    returned = client.get("/healthz", headers=headers).headers["x-request-id"]
    assert returned != given and len(returned) == 32 and int(returned, 16) >= 0


def test_every_response_gets_a_fresh_id(client: TestClient):
    ids = {client.get("/healthz").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_problem_documents_carry_the_request_id(client: TestClient):
    for response in (
        client.get("/v1/nothing", headers={"X-Request-ID": "req-404"}),
        client.get("/v1/jobs", params={"limit": 0}, headers={"X-Request-ID": "req-422"}),  # invalid limit
        client.post("/healthz", headers={"X-Request-ID": "req-405"}),
        client.post("/v1/extract", content=b"GIF89a", headers={"X-Request-ID": "req-503"}),
    ):
        assert response.json()["request_id"] == response.headers["x-request-id"]
        assert response.headers["x-request-id"] == f"req-{response.status_code}"


def test_each_request_writes_one_access_record(client: TestClient, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.INFO, logger="docextract.access"):
        client.get("/v1/documents/" + "a" * 64, headers={"X-Request-ID": "trace-1"})
    records = [r for r in caplog.records if r.name == "docextract.access"]
    assert len(records) == 1
    record = records[0]
    assert (record.method, record.path, record.status) == ("GET", "/v1/documents/" + "a" * 64, 404)
    assert record.duration_ms >= 0 and record.request_id == "trace-1"


def test_an_unexpected_error_is_a_500_problem_with_the_request_id(api_settings: Settings):
    def broken(*args):
        raise RuntimeError("a bug")

    app = create_app(api_settings, extract=broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200, 60)
        response = client.post("/v1/extract", content=words_document(1), headers={"X-Request-ID": "bug-1"})
    assert response.status_code == 500 and response.headers["x-request-id"] == "bug-1"
    assert response.json()["type"].endswith("/internal-error") and response.json()["request_id"] == "bug-1"
    assert "a bug" not in response.text  # no internals in the answer
