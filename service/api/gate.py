"""Refusals made before a request's body is taken in: the API key, and the body's size.

FastAPI reads a multipart body before it runs a route's dependencies, so without this gate a request with
no valid key, or one far over the limits, would be taken in whole (hundreds of megabytes, spooled to disk)
only to be refused afterwards. This pure ASGI middleware answers such `/v1` requests with the same problem
documents the routes give: a missing or wrong key and a declared `Content-Length` over the limit at once,
the body unread; a body sent without a length (chunked) or longer than it said, as soon as the bytes read
pass the limit: the route reads nothing more, and whatever it makes of the cut-off body, the answer is the
limit's 413. Each refusal closes the connection (`Connection: close`): the rest of the body is never read.

This is the one check of a request body's size. Its limit allows `MULTIPART_SLACK` bytes of framing (part
headers and boundaries) around the upload, the dataset or a job's files; the routes then hold each file to
its own limit exactly as they read it (`service.api.routes.uploads.read_upload`).
"""

from dataclasses import dataclass

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.auth import bearer_token, check_key
from service.errors import DatasetTooLargeError, DocextractError, UploadTooLargeError, error_response
from service.settings import Settings

MULTIPART_SLACK = 1 << 20  # part headers and boundaries around the files themselves


@dataclass(frozen=True)
class BodyLimit:
    """The most bytes a request body may have (its framing included), and the error past it."""

    size: int
    error: type[DocextractError]

    def refusal(self, declared: str | None = None) -> DocextractError:
        """The error for a body that declares `declared` bytes, or (None) was read past the limit."""
        if declared is None:
            return self.error(f"the request body has more than {self.size} bytes, the limit with its headers")
        return self.error(
            f"the request body has {declared} bytes, more than the limit ({self.size} with its headers)"
        )


def body_limit(method: str, path: str, settings: Settings) -> BodyLimit | None:
    """The limit of a request's body; None for requests that carry no upload."""
    if method != "POST":
        return None
    if path == "/v1/training-runs":
        return BodyLimit(settings.max_dataset_bytes + MULTIPART_SLACK, DatasetTooLargeError)
    if path in ("/v1/extract", "/v1/documents"):
        return BodyLimit(settings.max_upload_bytes + MULTIPART_SLACK, UploadTooLargeError)
    if path == "/v1/jobs":
        return BodyLimit(settings.max_job_bytes + MULTIPART_SLACK, UploadTooLargeError)
    return None


def refusal(scope: Scope, settings: Settings) -> DocextractError | None:
    """Why the request is refused from its headers alone (None: let it in)."""
    headers = Headers(scope=scope)
    try:
        check_key(headers.get("x-api-key"), bearer_token(headers.get("authorization")), settings.api_keys)
    except DocextractError as exc:
        return exc
    limit = body_limit(scope["method"], scope["path"], settings)
    declared = headers.get("content-length", "")
    if limit is not None and declared.isdigit() and int(declared) > limit.size:
        return limit.refusal(declared)
    return None


async def refuse(refused: DocextractError, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer with the refusal's problem document and close the connection."""
    request_id = scope.get("state", {}).get("request_id")
    await error_response(refused, scope["path"], request_id, close=True)(scope, receive, send)


class CountedBody:
    """One request through the app with its body counted as the app reads it (see the module). An answer
    the app gives before the body has been read to its end (a file over its own limit) closes the
    connection too."""

    def __init__(self, app: ASGIApp, limit: BodyLimit) -> None:
        self.app, self.limit = app, limit
        self.size, self.started, self.read = 0, False, False
        self.refused: DocextractError | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.size += len(message.get("body", b""))
                self.read = not message.get("more_body", False)
                if self.size > self.limit.size:
                    self.refused = self.limit.refusal()
                    raise self.refused
            return message

        async def unless_refused(message: Message) -> None:
            if self.refused is not None:  # once refused, the refusal is the answer
                return
            if message["type"] == "http.response.start":
                self.started = True
                if not self.read:
                    MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        try:
            await self.app(scope, counted, unless_refused)
        except Exception:
            if self.refused is None or self.started:
                raise
        if self.refused is not None and not self.started:
            await refuse(self.refused, scope, receive, send)


class RequestGate:
    """ASGI middleware: refuses `/v1` requests without a valid key or over the size limit (see the
    module)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        refused = refusal(scope, self.settings)
        if refused is not None:
            await refuse(refused, scope, receive, send)
            return
        limit = body_limit(scope["method"], scope["path"], self.settings)
        if limit is None:
            await self.app(scope, receive, send)
        else:
            await CountedBody(self.app, limit)(scope, receive, send)
