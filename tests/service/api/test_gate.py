"""The request gate refuses from the headers alone: no valid key, or a declared body over the limit, and
the body is never read (a 200 MB upload without a key costs the service nothing); a body sent without a
length (chunked) is refused as soon as the bytes read pass the limit, on a real server too."""

import asyncio
import json
import select
import socket
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from service.api.auth import bearer_token
from service.api.gate import MULTIPART_SLACK, RequestGate
from service.main import create_app
from service.settings import Settings
from tests.service.api.routes.test_extract import problem
from tests.service.support import DocextractProcess, free_port, wait_for

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


LOCKED = Settings(api_keys=[KEY], max_upload_bytes=1000, max_dataset_bytes=5000, max_job_bytes=8000)


@pytest.mark.parametrize("path", ["/v1/documents", "/v1/jobs", "/v1/training-runs", "/v1/extract"])
def test_a_request_without_a_valid_key_is_refused_unread(path: str):
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Basic " + KEY}):
        status, body, reached, reads = call(LOCKED, "POST", path, {"content-length": "200000000", **headers})
        assert (status, body["type"].rsplit("/", 1)[1], reached, reads) == (401, "unauthorized", False, 0)
        assert body["request_id"] == "rid" and body["instance"] == path


@pytest.mark.parametrize(
    ("path", "limit", "kind"),
    [("/v1/documents", 1000, "upload-too-large"), ("/v1/extract", 1000, "upload-too-large"),
     ("/v1/training-runs", 5000, "dataset-too-large"), ("/v1/jobs", 8000, "upload-too-large")],
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
    job_files = str(open_settings.max_job_bytes + MULTIPART_SLACK)  # a job's files together, not one file's
    assert call(open_settings, "POST", "/v1/jobs", {"content-length": job_files})[2] is True
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


def test_refusals_close_the_connection():
    """The body of a refused request is left unread: the answer says the connection ends with it."""
    for settings, headers in ((LOCKED, {}), (LOCKED, {"X-API-Key": KEY, "content-length": "99999999"})):
        sent: list[Message] = []

        async def send(message: Message, sent: list[Message] = sent) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/documents", "query_string": b"", "state": {}}
        scope["headers"] = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        asyncio.run(RequestGate(lambda *_: None, settings)(scope, lambda: None, send))  # type: ignore[arg-type]
        assert (b"connection", b"close") in sent[0]["headers"]


def counted_call(path: str, chunks: int, chunk: int) -> tuple[int, dict, list[tuple[bytes, bytes]], int]:
    """A body of `chunks` x `chunk` bytes sent without a length, through the gate around an app that reads
    it to the end (200), or fails as FastAPI does on a body it cannot parse (400): (status, body, headers,
    how many chunks the app got)."""
    got, sent = [], []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            while (await receive()).get("more_body"):
                got.append(True)
        except Exception:
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"There was an error parsing the body"})
            raise
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b"x" * chunk, "more_body": len(got) < chunks}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"", "state": {}}
    scope["headers"] = [(b"x-api-key", KEY.encode())]
    asyncio.run(RequestGate(inner, LOCKED)(scope, receive, send))
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    return sent[0]["status"], body, sent[0]["headers"], len(got)


@pytest.mark.parametrize(
    ("path", "limit", "kind"),
    [("/v1/documents", 1000, "upload-too-large"), ("/v1/jobs", 8000, "upload-too-large"),
     ("/v1/training-runs", 5000, "dataset-too-large")],
)  # fmt: skip
def test_a_body_read_past_the_limit_is_refused_with_the_limits_problem(path: str, limit: int, kind: str):
    chunk = 64 * 1024
    status, body, headers, got = counted_call(path, 1000, chunk)  # 64 MB
    assert (status, body["type"].rsplit("/", 1)[1], (b"connection", b"close") in headers) == (413, kind, True)
    assert "more than" in body["detail"] and got * chunk <= limit + MULTIPART_SLACK
    assert counted_call(path, (limit + MULTIPART_SLACK) // 1024 - 1, 1024)[0] == 200  # within the limit


MIB = 1 << 20


def chunked_request(port: int, path: str, head: bytes, content_type: str) -> tuple[bytes, int]:
    """POST `head` and then zeros, chunked, until the server answers (or 256 MiB went): the answer's bytes
    and how many body bytes the server let in (sent, less what is still in flight in socket buffers)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: {content_type}\r\n\r\n".encode()
        )
        piece = b"\x00" * (64 * 1024)
        chunk = lambda data: b"%x\r\n%s\r\n" % (len(data), data)  # noqa: E731
        sock.setblocking(False)
        pending, sent, answer = memoryview(chunk(head)), 0, b""
        while sent < 256 * MIB:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break
            if not writable:
                continue
            try:
                done = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent, pending = sent + done, pending[done:]
            pending = pending if len(pending) else memoryview(chunk(piece))
        sock.setblocking(True)
        sock.settimeout(10)
        try:
            while data := sock.recv(65536):
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
        return answer, sent


def multipart_head(field: str) -> bytes:
    return (
        f'--BOUNDARY\r\nContent-Disposition: form-data; name="{field}"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def test_chunked_uploads_are_refused_at_the_limit_on_a_real_server(api_settings: Settings, tmp_path: Path):
    """Without a Content-Length nothing is checked before the body is read: each route used to spool the
    whole body (hundreds of MB) to a temporary file first. Now the server stops reading at the limit."""
    limits = {"max_upload_bytes": MIB, "max_job_bytes": 2 * MIB, "max_dataset_bytes": 3 * MIB}
    settings = api_settings.model_copy(update={"port": free_port(), **limits})
    multipart = "multipart/form-data; boundary=BOUNDARY"
    requests = [
        ("/v1/extract", b"%PDF-1.4\n", "application/pdf", MIB, "upload-too-large"),
        ("/v1/extract", multipart_head("file"), multipart, MIB, "upload-too-large"),
        ("/v1/documents", multipart_head("file"), multipart, MIB, "upload-too-large"),
        ("/v1/jobs", multipart_head("files"), multipart, 2 * MIB, "upload-too-large"),
        ("/v1/training-runs", multipart_head("dataset"), multipart, 3 * MIB, "dataset-too-large"),
    ]
    with DocextractProcess(["serve"], settings, tmp_path / "serve.log"):
        base = f"http://127.0.0.1:{settings.port}"
        wait_for(lambda: alive(base), 60, 0.2)
        for path, head, content_type, limit, kind in requests:
            started = time.monotonic()
            answer, sent = chunked_request(settings.port, path, head, content_type)
            elapsed = time.monotonic() - started
            headers, _, body = answer.partition(b"\r\n\r\n")
            print(f"{path} {content_type}: refused after {elapsed:.2f} s, {sent / MIB:.1f} MiB sent")
            assert headers.startswith(b"HTTP/1.1 413"), (path, answer[:300])
            assert b"connection: close" in headers.lower()
            assert json.loads(body)["type"].endswith("/" + kind)
            assert elapsed < 5.0
            assert sent < limit + MULTIPART_SLACK + 16 * MIB, "socket buffers hold a few MiB at most"
        assert alive(base)


def alive(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
