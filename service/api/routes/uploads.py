"""Reading an uploaded file: size-limited, and checked before it is stored (shared by the routes that take
uploads)."""

from typing import Any, BinaryIO

from fastapi import UploadFile

from service.errors import DocumentError
from service.ingest.load import DocumentFormat, check_document
from service.ingest.page import check_upload_bytes
from service.schemas import Problem
from service.settings import Settings

CHUNK = 1 << 20
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


def read_upload(stream: BinaryIO, limit: int, name: str | None = None) -> bytes:
    """All bytes of an upload, refusing more than `limit` without reading them all."""
    chunks, size = [], 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        check_upload_bytes(size, limit, upload_name(name))
        chunks.append(chunk)
    return b"".join(chunks)


def checked_upload(
    upload: UploadFile, settings: Settings, pages: str | None = None
) -> tuple[bytes, DocumentFormat]:
    """Blocking: the bytes and format of an upload that `load_document` can read (`check_document`); a
    refusal is the same error as `load_document` gives, its detail naming the file."""
    data = read_upload(upload.file, settings.max_upload_bytes, upload.filename)
    try:
        return data, check_document(data, settings, pages)
    except DocumentError as exc:
        raise type(exc)(f"{upload_name(upload.filename)}: {exc.detail}") from exc
