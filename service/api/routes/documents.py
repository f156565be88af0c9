"""Stored documents: upload, list, read, delete; their latest result and page overlays."""

import re

from fastapi import APIRouter, File, Path, Response, UploadFile
from PIL import Image

from service.api.routes.paging import PageAfter, PageLimit, PageOffset, page_of, requested_cursor
from service.api.routes.uploads import UNREADABLE, checked_upload
from service.deps import Services, ServicesDep
from service.errors import DocumentNotFoundError, ResultNotFoundError
from service.ingest.load import detect_format, load_document
from service.ingest.pdf import POINTS_PER_INCH, pdf_info
from service.overlay import overlay_png
from service.schemas import DocumentList, ExtractionResult, PageResult, Problem, StoredDocument
from service.settings import Settings
from service.views import document_view

router = APIRouter(prefix="/v1/documents", tags=["documents"])
DOCUMENT_ID = re.compile(r"[0-9a-f]{64}")
DocumentId = Path(
    description="SHA-256 of the document's bytes (64 lowercase hex digits; any other id is a 404)."
)
NOT_FOUND = {404: {"model": Problem, "description": "No such document (or no result yet)."}}


def stored_document(services: Services, document_id: str) -> dict[str, object]:
    row = services.store.get_document(document_id) if DOCUMENT_ID.fullmatch(document_id) else None
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
    services: ServicesDep,
    response: Response,
    file: UploadFile = File(description="PDF, PNG, JPEG, TIFF, BMP, WebP or JSON pages."),
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
    services: ServicesDep,
    limit: int = PageLimit,
    offset: int = PageOffset,
    after: str | None = PageAfter,
) -> DocumentList:
    """One page of stored documents, newest first (like the job and training-run lists)."""
    cursor_after = requested_cursor(offset, after)
    rows, total, cursor = page_of(services.store.list_documents(limit + 1, offset, cursor_after), limit)
    documents = [document_view(r) for r in rows]
    return DocumentList(
        items=documents, documents=documents, total=total, limit=limit, offset=offset, next_cursor=cursor
    )


@router.get("/{document_id}", response_model=StoredDocument, responses=NOT_FOUND, summary="A stored document")
def get_document(services: ServicesDep, document_id: str = DocumentId) -> StoredDocument:
    return document_view(stored_document(services, document_id))


@router.delete("/{document_id}", status_code=204, responses=NOT_FOUND, summary="Delete a stored document")
def delete_document(services: ServicesDep, document_id: str = DocumentId) -> Response:
    if not DOCUMENT_ID.fullmatch(document_id) or not services.store.delete_document(document_id):
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
def get_result(services: ServicesDep, document_id: str = DocumentId) -> ExtractionResult:
    return latest_result(services, document_id)


def rendering_settings(settings: Settings, data: bytes, page: PageResult) -> Settings:
    """The settings that load `page` at the result's size: for a PDF, the resolution the result came from
    (a job or request may have chosen its own `dpi`)."""
    if detect_format(data) != "pdf":
        return settings
    size_pt = pdf_info(data, settings, page.page).size_pt(page.page - 1)
    dpi = round(max(page.width, page.height) * POINTS_PER_INCH / max(size_pt))
    return settings.model_copy(update={"pdf_dpi": min(max(dpi, 36), 1200)})


def page_image(services: Services, document_id: str, page: PageResult) -> Image.Image | None:
    """The page image the result's boxes refer to (turned upright as OCR did, at the result's size)."""
    data = services.store.read_file(document_id)
    settings = rendering_settings(services.settings, data, page)
    image = load_document(data, settings, str(page.page))[0].image
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
    services: ServicesDep,
    document_id: str = DocumentId,
    page: int = Path(ge=1, description="1-based page number."),
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
