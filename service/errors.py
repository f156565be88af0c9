"""Domain errors and their mapping to RFC 9457 problem documents, in one place.

Route code raises `DocextractError` subclasses; `install_error_handlers` turns them, request validation
errors and unknown routes into `application/problem+json` responses with a stable `type` per kind
(`service.api.problem_docs` makes the OpenAPI document say so).
"""

import errno
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://docextract.dev/problems/"
# Sent with every answer after which the connection is not kept: an unexpected error's (the server closes
# it), and a refusal of a request whose body is left unread.
CLOSE = {"Connection": "close"}
# What the file system and SQLite say when the data directory cannot be written (or read).
STORAGE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EIO})
SQLITE_STORAGE_CODES = frozenset({3, 5, 8, 10, 13, 14})  # PERM, BUSY, READONLY, IOERR, FULL, CANTOPEN
log = logging.getLogger("docextract.errors")


class DocextractError(Exception):
    """Base of every error the service reports to a client. Subclasses set `kind` and `status`."""

    kind = "internal-error"
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnauthorizedError(DocextractError):
    """API keys are configured and the request carries none, or a wrong one."""

    kind = "unauthorized"
    status = HTTPStatus.UNAUTHORIZED
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": 'Bearer realm="docextract"'}


class NotReadyError(DocextractError):
    """The service cannot serve requests yet (e.g. no model loaded)."""

    kind = "not-ready"
    status = HTTPStatus.SERVICE_UNAVAILABLE


class StorageUnavailableError(DocextractError):
    """The data directory cannot be written or read: a read-only or full file system, or a database that
    cannot be opened. Nothing is wrong with the request: it may succeed once storage is back."""

    kind = "storage-unavailable"
    status = HTTPStatus.SERVICE_UNAVAILABLE


def storage_failure(exc: BaseException) -> StorageUnavailableError | None:
    """The StorageUnavailableError an OSError or SQLite error stands for; None for any other error."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in SQLITE_STORAGE_CODES:
            return StorageUnavailableError(f"the service's database cannot be used: {exc}")
    elif isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        return StorageUnavailableError(f"the service's data directory cannot be used: {exc.strerror}")
    return None


class DocumentError(DocextractError):
    """Base of the errors about an uploaded document: the client sent something we cannot read."""

    kind = "invalid-document"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class UnsupportedFormatError(DocumentError):
    """The content is not one of the supported formats (whatever its name or declared type says)."""

    kind = "unsupported-format"
    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class EmptyFileError(DocumentError):
    """The upload has no bytes (or only whitespace)."""

    kind = "empty-file"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class CorruptFileError(DocumentError):
    """The content starts like a supported format but cannot be decoded (corrupt or truncated)."""

    kind = "corrupt-file"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class EncryptedPdfError(DocumentError):
    """The PDF needs a password to open."""

    kind = "encrypted-pdf"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class DocumentTimeoutError(DocumentError):
    """Decoding or rasterising the document took longer than the configured limit."""

    kind = "document-timeout"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class UploadTooLargeError(DocumentError):
    """The upload has more bytes than `max_upload_bytes`."""

    kind = "upload-too-large"
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class TooManyPagesError(DocumentError):
    """The document (after page selection) has more pages than `max_pages`."""

    kind = "too-many-pages"
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class TooManyPixelsError(DocumentError):
    """A page image has more pixels than `max_page_pixels` (decompression bombs included)."""

    kind = "too-many-pixels"
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class TooManyWordsError(DocumentError):
    """A page of JSON pages or a PDF text layer with more words than `max_words_per_page`."""

    kind = "too-many-words"
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class OcrLanguageError(DocumentError):
    """An OCR language that the installed tesseract does not have."""

    kind = "unsupported-ocr-language"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class InvalidPagesJsonError(DocumentError):
    """A JSON pages document that does not match the schema (boxes outside the page, empty words, ...)."""

    kind = "invalid-pages-json"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class PageSelectionError(DocumentError):
    """A `pages` selection that does not parse or names pages the document does not have."""

    kind = "invalid-page-selection"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class InvalidCursorError(DocextractError):
    """A list's `after` parameter that is not a `next_cursor` this API gave, or one given with an offset."""

    kind = "invalid-cursor"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class BadRequestError(DocextractError):
    """A request the API cannot act on (no files in a job, a bad callback URL, a wrong content type)."""

    kind = "bad-request"
    status = HTTPStatus.BAD_REQUEST


class CallbackUrlRefusedError(BadRequestError):
    """A job callback URL that points at a loopback, private, link-local or otherwise internal address
    (server-side request forgery), or whose host does not resolve."""

    kind = "callback-url-refused"


class NotFoundError(DocextractError):
    """Base of the errors about a resource that does not exist."""

    kind = "not-found"
    status = HTTPStatus.NOT_FOUND


class DocumentNotFoundError(NotFoundError):
    kind = "document-not-found"


class ResultNotFoundError(NotFoundError):
    """The document exists but has no result yet (no job has processed it)."""

    kind = "result-not-found"


class JobNotFoundError(NotFoundError):
    kind = "job-not-found"


class TrainingRunNotFoundError(NotFoundError):
    kind = "training-run-not-found"


class ModelNotFoundError(NotFoundError):
    kind = "model-not-found"


class ConflictError(DocextractError):
    """The resource is in a state that forbids the request (e.g. deleting the active model)."""

    kind = "conflict"
    status = HTTPStatus.CONFLICT


class ModelInUseError(ConflictError):
    kind = "model-in-use"


class JobFinishedError(ConflictError):
    kind = "job-finished"


class JobNotEndedError(ConflictError):
    kind = "job-not-ended"


class TrainingRunFinishedError(ConflictError):
    kind = "training-run-finished"


class ModelLoadError(DocextractError):
    """A registered model whose files cannot be loaded (it is never activated), so it cannot be served."""

    kind = "model-load-failed"
    status = HTTPStatus.SERVICE_UNAVAILABLE


class InvalidDatasetError(DocextractError):
    """A training dataset that is not a safe zip of FUNSD-format data; the detail names the problem."""

    kind = "invalid-dataset"
    status = HTTPStatus.UNPROCESSABLE_ENTITY


class DatasetTooLargeError(InvalidDatasetError):
    """A dataset zip over the size, member-count, unpacked-size or compression-ratio limits."""

    kind = "dataset-too-large"
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def problem_response(
    status: int,
    kind: str,
    detail: str,
    instance: str,
    extra: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
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
    return JSONResponse(body, status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=headers)


def _request_id(request: Request) -> dict[str, object]:
    """The request id (`service.api.request_context`) as a problem member, when the request has one."""
    found = getattr(request.state, "request_id", None)
    return {"request_id": found} if found else {}


def _http_kind(status: int) -> str:
    # 400 comes from the multipart parser (malformed body, too many fields or files, a part or a part's
    # header over its size limit): the same kind as the API's own `BadRequestError`.
    return {400: "bad-request", 404: "not-found", 405: "method-not-allowed"}.get(status, f"http-{status}")


def error_response(
    exc: DocextractError, instance: str, request_id: str | None, close: bool = False
) -> JSONResponse:
    """The problem document of a service error (`close`: with `Connection: close`)."""
    extra = {"request_id": request_id} if request_id else {}
    headers = {**(exc.headers or {}), **(CLOSE if close else {})} or None
    return problem_response(exc.status, exc.kind, exc.detail, instance, extra, headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DocextractError)
    return error_response(exc, request.url.path, getattr(request.state, "request_id", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    extra = {"errors": errors, **_request_id(request)}
    return problem_response(422, "validation-error", detail, request.url.path, extra)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A 500 problem document. The server closes the connection after it (the error may have left the
    request half read), so the answer says so: a client would otherwise send its next request into a
    connection that is being closed, and get a reset."""
    extra = _request_id(request)
    return problem_response(500, "internal-error", "internal server error", request.url.path, extra, CLOSE)


async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
    """A 503 `storage-unavailable` for an OSError or SQLite error of the data directory (a read-only or full
    disk), reads included; any other such error is an unexpected one (logged, 500)."""
    unavailable = storage_failure(exc)
    if unavailable is None:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return await _unexpected_error(request, exc)
    log.warning("%s %s: %s", request.method, request.url.path, unavailable.detail)
    return error_response(unavailable, request.url.path, getattr(request.state, "request_id", None))


def allowed_methods(request: Request) -> dict[str, str]:
    """The `Allow` header of a 405: the methods of every route on the path (Starlette names only those of
    the first route it tried)."""

    def walk(routes: Iterable[Any]) -> Iterator[Any]:
        for route in routes:
            nested = getattr(route, "original_router", None)  # an included router (FastAPI)
            yield from walk(nested.routes) if nested is not None else [route]

    methods: set[str] = set()
    for route in walk(request.app.router.routes):
        if getattr(route, "methods", None) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    return {"Allow": ", ".join(sorted(methods))}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        exc.headers = allowed_methods(request)
    return problem_response(
        exc.status_code,
        _http_kind(exc.status_code),
        str(exc.detail),
        request.url.path,
        _request_id(request),
        getattr(exc, "headers", None),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the one mapping from exceptions to problem documents."""
    app.add_exception_handler(DocextractError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OSError, _storage_error)
    app.add_exception_handler(sqlite3.Error, _storage_error)
    app.add_exception_handler(Exception, _unexpected_error)
