"""Request ids and access records: pure ASGI middleware around the whole app.

A request's id is its `X-Request-ID` header when that is a sane token (1 to 128 characters among letters,
digits and `._:-`; a proxy's or client's id is kept so logs can be joined across services), else a new
random one. The id goes into the `X-Request-ID` response header, into problem documents (`request_id`,
via `request.state`), into every log record written while the request runs (`service.logs`), and into one
access record per request: method, path, status and duration.
"""

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import request_id_var

HEADER = "x-request-id"
VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("docextract.access")


def request_id_from(scope: Scope) -> str:
    """The client's id when it is valid, else a new one."""
    for name, value in scope.get("headers", []):
        if name == HEADER.encode():
            given = value.decode("latin-1")
            if VALID_ID.match(given):
                return given
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Gives every HTTP request an id (header, state, logs) and writes its access record."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            access_log.info(
                '"%s %s" %s %.1f ms',
                scope["method"],
                scope["path"],
                status,
                duration_ms,
                extra={"method": scope["method"], "path": scope["path"], "status": status,
                       "duration_ms": duration_ms, "request_id": request_id},
            )  # fmt: skip
            request_id_var.reset(token)
