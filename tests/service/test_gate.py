"""The request gate refuses from the headers alone: no valid key, or a declared body over the limit, and
the body is never read (a 200 MB upload without a key costs the service nothing)."""

import asyncio
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from service.auth import bearer_token
from service.gate import MULTIPART_SLACK, RequestGate
from service.main import create_app
from service.settings import Settings
from tests.service.routes.test_extract import problem

KEY = "k-0123456789abcdef"


def call(
    gate_settings: Settings, method: str, path: str, headers: dict[str, str]
) -> tuple[int, dict, bool, int]:
    """Run one request through the gate around an app that reads the body: (status, body, app reached,
    how many times the body was asked for)."""
    reached, reads, sent = [], [], []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(True)
        await receive()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        reads.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "query_string": b"",
        "state": {"request_id": "rid"},
    }
    asyncio.run(RequestGate(inner, gate_settings)(scope, receive, send))
    status = sent[0]["status"]
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]) or b"{}")
    return status, body, bool(reached), len(reads)


LOCKED = Settings(api_keys=[KEY], max_upload_bytes=1000, max_dataset_bytes=5000)


@pytest.mark.parametrize("path", ["/v1/documents", "/v1/jobs", "/v1/training-runs", "/v1/extract"])
def test_a_request_without_a_valid_key_is_refused_unread(path: str):
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Basic " + KEY}):
        status, body, reached, reads = call(LOCKED, "POST", path, {"content-length": "200000000", **headers})
        assert (status, body["type"].rsplit("/", 1)[1], reached, reads) == (401, "unauthorized", False, 0)
        assert body["request_id"] == "rid" and body["instance"] == path


@pytest.mark.parametrize(
    ("path", "limit", "kind"),
    [("/v1/documents", 1000, "upload-too-large"), ("/v1/extract", 1000, "upload-too-large"),
     ("/v1/training-runs", 5000, "dataset-too-large")],
)  # fmt: skip
def test_a_body_declared_over_the_limit_is_refused_unread(path: str, limit: int, kind: str):
    over = {"X-API-Key": KEY, "content-length": str(limit + MULTIPART_SLACK + 1)}
    status, body, reached, reads = call(LOCKED, "POST", path, over)
    assert (status, body["type"].rsplit("/", 1)[1], reached, reads) == (413, kind, False, 0)
    within = {"Authorization": f"Bearer {KEY}", "content-length": str(limit + MULTIPART_SLACK)}
    assert call(LOCKED, "POST", path, within)[2:] == (True, 1)


def test_what_the_gate_lets_through():
    open_settings = Settings(max_upload_bytes=1000)
    assert call(open_settings, "POST", "/v1/documents", {"content-length": "10"})[2] is True
    assert call(open_settings, "POST", "/v1/jobs", {"content-length": "999999999"})[2] is True  # per file
    assert call(LOCKED, "GET", "/healthz", {})[2] is True  # the probes need no key
    assert call(LOCKED, "GET", "/v1/models", {"x-api-key": KEY})[2] is True


def test_bearer_tokens():
    assert bearer_token(f"Bearer {KEY}") == bearer_token(f"bearer  {KEY} ") == KEY
    assert (
        bearer_token(f"Basic {KEY}") is None
        and bearer_token("Bearer ") is None
        and bearer_token(None) is None
    )


def test_through_the_app_the_refusal_is_the_gates(tmp_path: Path):
    settings = Settings(
        data_dir=tmp_path / "data", default_model_dir=tmp_path / "none", max_upload_bytes=1000
    )
    with TestClient(create_app(settings)) as client:
        big = b"x" * (1000 + MULTIPART_SLACK + 1)
        response = client.post("/v1/documents", files={"file": ("a.png", big, "image/png")})
        assert "the request body has" in problem(response, 413, "upload-too-large")["detail"]
