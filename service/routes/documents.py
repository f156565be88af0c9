"""Stored documents: upload, list, read, delete; their latest result and page overlays."""

from typing import Any, BinaryIO

from fastapi import APIRouter, Depends, File, Path, Query, Response, UploadFile
from PIL import Image

from service.errors import DocumentError, DocumentNotFoundError, ResultNotFoundError, UploadTooLargeError
from service.overlay import overlay_png
from service.pages import DocumentFormat, check_document, load_document
from service.schemas import DocumentList, ExtractionResult, PageResult, Problem, StoredDocument
from service.settings import Settings
from service.views import document_view
from service.work import Services, get_services

router = APIRouter(prefix="/v1/documents", tags=["documents"])
DocumentId = Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the document's bytes.")
NOT_FOUND = {404: {"model": Problem, "description": "No such document (or no result yet)."}}
CHUNK = 1 << 20
# The paging of every list (documents, jobs, training runs).
PageLimit = Query(100, ge=1, le=1000)
PageOffset = Query(0, ge=0, le=2**62)  # SQLite integers are 64-bit
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
        if size > limit:
            raise UploadTooLargeError(f"{upload_name(name)} has more than {limit} bytes, the limit")
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


def stored_document(services: Services, document_id: str) -> dict[str, object]:
    row = services.store.get_document(document_id)
    if row is None:
        raise DocumentNotFoundError(f"no document {document_id}")
    return row


@router.post(
    "",
    status_code=201,
    response_model=StoredDocument,
    summary="Store a document",
    responses={400: {"model": Problem, "description": "A malformed multipart body."}} | UNREADABLE,
)
def upload_document(
    response: Response,
    file: UploadFile = File(description="PDF, PNG, JPEG, TIFF, BMP, WebP or JSON pages."),
    services: Services = Depends(get_services),
) -> StoredDocument:
    """Store an upload (its id is the SHA-256 of its bytes; the same bytes twice are one document). It is
    read first, as `POST /v1/extract` would read it, and refused (nothing stored) when that fails; PDF pages
    are counted and sized, not rasterised."""
    data, fmt = checked_upload(file, services.settings)
    row = services.store.add_document(data, file.filename, fmt)
    response.headers["Location"] = f"/v1/documents/{row['id']}"
    return document_view(row)


@router.get("", response_model=DocumentList, summary="List stored documents")
def list_documents(
    limit: int = PageLimit,
    offset: int = PageOffset,
    services: Services = Depends(get_services),
) -> DocumentList:
    rows, total = services.store.list_documents(limit, offset)
    return DocumentList(documents=[document_view(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{document_id}", response_model=StoredDocument, responses=NOT_FOUND, summary="A stored document")
def get_document(document_id: str = DocumentId, services: Services = Depends(get_services)) -> StoredDocument:
    return document_view(stored_document(services, document_id))


@router.delete("/{document_id}", status_code=204, responses=NOT_FOUND, summary="Delete a stored document")
def delete_document(document_id: str = DocumentId, services: Services = Depends(get_services)) -> Response:
    if not services.store.delete_document(document_id):
        raise DocumentNotFoundError(f"no document {document_id}")
    return Response(status_code=204)


def latest_result(services: Services, document_id: str) -> ExtractionResult:
    stored_document(services, document_id)
    data = services.store.document_result(document_id)
    if data is None:
        raise ResultNotFoundError(f"document {document_id} has no result yet: process it with POST /v1/jobs")
    return ExtractionResult.model_validate_json(data)


@router.get(
    "/{document_id}/result",
    response_model=ExtractionResult,
    responses=NOT_FOUND,
    summary="The latest extraction result of a document",
)
def get_result(document_id: str = DocumentId, services: Services = Depends(get_services)) -> ExtractionResult:
    return latest_result(services, document_id)


def page_image(services: Services, document_id: str, page: PageResult) -> Image.Image | None:
    """The page image the result's boxes refer to (turned upright as OCR did, at the result's size)."""
    data = services.store.read_file(document_id)
    image = load_document(data, services.settings, str(page.page))[0].image
    if image is None:
        return None
    if page.rotation:
        image = image.rotate(-page.rotation, expand=True)
    if image.size != (page.width, page.height):
        image = image.resize((page.width, page.height))
    return image


@router.get(
    "/{document_id}/pages/{page}/overlay.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The page with its entities drawn."}}
    | NOT_FOUND,
    summary="A page of the latest result drawn over its image",
)
def get_overlay(
    document_id: str = DocumentId,
    page: int = Path(ge=1, description="1-based page number."),
    services: Services = Depends(get_services),
) -> Response:
    result = latest_result(services, document_id)
    found = next((p for p in result.pages if p.page == page), None)
    if found is None:
        pages = ", ".join(str(p.page) for p in result.pages)
        raise ResultNotFoundError(
            f"page {page} is not in the result of document {document_id} (pages: {pages})"
        )
    png = overlay_png(page_image(services, document_id, found), found)
    return Response(content=png, media_type="image/png")
