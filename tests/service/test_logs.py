"""Log formats: JSON is one object per line with the request id and the access fields; text carries the
request id too; records from the request's worker threads keep its id."""

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.logs import configure_logging, request_id_var
from service.main import create_app
from service.settings import Settings


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_logs_are_one_object_per_line(tmp_path: Path, capsys: pytest.CaptureFixture, restore_logging):
    settings = Settings(data_dir=tmp_path / "data", default_model_dir=tmp_path / "none", log_format="json")
    configure_logging(settings)
    with TestClient(create_app(settings)) as client:
        capsys.readouterr()
        client.get("/v1/documents/" + "b" * 64, headers={"X-Request-ID": "json-1"})
        client.post("/v1/extract", content=b"x", headers={"X-Request-ID": "json-2"})
    entries = json_lines(capsys.readouterr().err)  # every line parses, or this fails
    access = [e for e in entries if e["logger"] == "docextract.access"]
    assert [(e["request_id"], e["method"], e["path"], e["status"]) for e in access] == [
        ("json-1", "GET", "/v1/documents/" + "b" * 64, 404),
        ("json-2", "POST", "/v1/extract", 503),  # no model in this app
    ]
    assert all(
        e["level"] == "info" and e["duration_ms"] >= 0 and e["time"].endswith("+00:00") for e in access
    )


def test_exceptions_and_extras_are_fields(capsys: pytest.CaptureFixture, restore_logging, tmp_path: Path):
    configure_logging(Settings(data_dir=tmp_path, log_format="json", log_level="debug"))
    token = request_id_var.set("ctx-9")
    try:
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            logging.getLogger("docextract.test").exception("failed %s", "here", extra={"document": "d1"})
    finally:
        request_id_var.reset(token)
    logging.getLogger("docextract.test").debug("outside")
    first, second = json_lines(capsys.readouterr().err)
    assert (first["message"], first["request_id"], first["document"]) == ("failed here", "ctx-9", "d1")
    assert "ValueError: boom" in first["exception"] and first["level"] == "error"
    assert second["request_id"] is None and second["message"] == "outside"


def test_text_logs_carry_the_request_id(capsys: pytest.CaptureFixture, restore_logging, tmp_path: Path):
    configure_logging(Settings(data_dir=tmp_path, log_format="text", log_level="warning"))
    token = request_id_var.set("txt-1")
    logging.getLogger("docextract.test").warning("inside")
    request_id_var.reset(token)
    logging.getLogger("docextract.test").warning("outside")
    logging.getLogger("docextract.test").info("below the level")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("WARNING docextract.test [txt-1] inside")
    assert lines[1].endswith("WARNING docextract.test [-] outside")
