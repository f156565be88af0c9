"""Reading an uploaded file or request body: size-limited, and checked before it is stored (shared by the
routes that take uploads). Each limit has one check, called on the bytes read so far after every chunk:
`service.ingest.page.check_upload_bytes` for a document, `service.jobs.datasets.check_dataset_bytes` for a
dataset zip (the request as a whole is limited by `service.api.gate` before it is read)."""

from collections.abc import Callable
from typing import Any, BinaryIO

from fastapi import Request, UploadFile

from service.errors import DocumentError
from service.ingest.load import DocumentFormat, check_document
from service.ingest.page import check_upload_bytes
from service.schemas import Problem
from service.settings import Settings

CHUNK = 1 << 20
SizeCheck = Callable[[int], None]  # raises once the bytes read so far are over a limit
# What an upload is refused for (the same status and problem type as POST /v1/extract for the same bytes).
UNREADABLE: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "Over the upload size, page count or pixels per page limits."},
    415: {"model": Problem, "description": "Not a supported format."},
    422: {
        "model": Problem,
        "description": "A file that cannot be read (corrupt, truncated, bad JSON pages), or a request that"
        " does not validate.",
    },
}


def upload_name(name: str | None) -> str:
    return f"the upload {name!r}" if name else "the upload"


def document_size(limit: int, name: str | None = None) -> SizeCheck:
    """The size check of one document of at most `limit` bytes, its error naming the upload."""
    return lambda size: check_upload_bytes(size, limit, upload_name(name))


def read_upload(stream: BinaryIO, check_size: SizeCheck) -> bytes:
    """All bytes of an uploaded file, refused (by `check_size`) past its limit without reading them all."""
    chunks, size = [], 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        check_size(size)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: Request, check_size: SizeCheck) -> bytes:
    """All bytes of a request body, refused (by `check_size`) past its limit without reading them all."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        check_size(size)
        chunks.append(chunk)
    return b"".join(chunks)


def checked_upload(
    upload: UploadFile, settings: Settings, pages: str | None = None
) -> tuple[bytes, DocumentFormat]:
    """Blocking: the bytes and format of an upload that `load_document` can read (`check_document`); a
    refusal is the same error as `load_document` gives, its detail naming the file."""
    data = read_upload(upload.file, document_size(settings.max_upload_bytes, upload.filename))
    try:
        return data, check_document(data, settings, pages)
    except DocumentError as exc:
        raise type(exc)(f"{upload_name(upload.filename)}: {exc.detail}") from exc
