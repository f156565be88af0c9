"""Refusals made from a request's headers, before its body is read: the API key and the declared size.

FastAPI reads a multipart body before it runs a route's dependencies, so without this gate a request with
no valid key, or one declaring a body far over the limits, would be taken in whole (hundreds of megabytes,
spooled to disk) only to be refused afterwards. This pure ASGI middleware answers such `/v1` requests at
once with the same problem documents the routes give. Bodies sent without a `Content-Length` (chunked)
are still limited by the routes as they read them.
"""

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from service.auth import bearer_token, check_key
from service.errors import DatasetTooLargeError, DocextractError, UploadTooLargeError, error_response
from service.settings import Settings

MULTIPART_SLACK = 1 << 20  # part headers and boundaries around the file itself


def body_limit(method: str, path: str, settings: Settings) -> tuple[int, type[DocextractError]] | None:
    """The most bytes a request may declare, and the error past it; None where no single limit applies
    (a job's files are limited one by one)."""
    if method != "POST":
        return None
    if path == "/v1/training-runs":
        return settings.max_dataset_bytes + MULTIPART_SLACK, DatasetTooLargeError
    if path in ("/v1/extract", "/v1/documents"):
        return settings.max_upload_bytes + MULTIPART_SLACK, UploadTooLargeError
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
    if limit is not None and declared.isdigit() and int(declared) > limit[0]:
        size, error = limit
        return error(f"the request body has {declared} bytes, more than the limit ({size} with its headers)")
    return None


class RequestGate:
    """ASGI middleware: refuses `/v1` requests without a valid key or over the size limit, unread."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            refused = refusal(scope, self.settings)
            if refused is not None:
                request_id = scope.get("state", {}).get("request_id")
                await error_response(refused, scope["path"], request_id)(scope, receive, send)
                return
        await self.app(scope, receive, send)
