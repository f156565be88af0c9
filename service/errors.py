"""Domain errors and their mapping to RFC 9457 problem documents, in one place.

Route code raises `DocextractError` subclasses; `install_error_handlers` turns them, request validation
errors and unknown routes into `application/problem+json` responses with a stable `type` per kind.
"""

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://docextract.dev/problems/"


class DocextractError(Exception):
    """Base of every error the service reports to a client. Subclasses set `kind` and `status`."""

    kind = "internal-error"
    status = HTTPStatus.INTERNAL_SERVER_ERROR

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotReadyError(DocextractError):
    """The service cannot serve requests yet (e.g. no model loaded)."""

    kind = "not-ready"
    status = HTTPStatus.SERVICE_UNAVAILABLE


def problem_response(
    status: int, kind: str, detail: str, instance: str, extra: dict[str, object] | None = None
) -> JSONResponse:
    """Build one RFC 9457 problem document."""
    body: dict[str, object] = {
        "type": PROBLEM_TYPE_BASE + kind,
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update(extra or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_CONTENT_TYPE)


def _http_kind(status: int) -> str:
    return {404: "not-found", 405: "method-not-allowed"}.get(status, f"http-{status}")


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DocextractError)
    return problem_response(exc.status, exc.kind, exc.detail, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return problem_response(422, "validation-error", detail, request.url.path, {"errors": errors})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem_response(exc.status_code, _http_kind(exc.status_code), str(exc.detail), request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    """Register the one mapping from exceptions to problem documents."""
    app.add_exception_handler(DocextractError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
