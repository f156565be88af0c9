"""Upload bytes -> pages: `load_document(data, settings, pages_selection)`.

The format comes from the content (magic bytes), never from a file name or a declared content type: PDF
(`service.ingest.pdf`), PNG, JPEG, TIFF (each frame a page), BMP, WebP, and already-recognised JSON pages
(`{"pages": [...]}`, see `JsonDocument`). Images are turned upright by their EXIF orientation and
normalised to mode L or RGB. Limits (bytes, pages, pixels per page) come from `Settings`; every bad input
raises a `service.errors.DocumentError` subclass and nothing else.
"""

import base64
import binascii
from io import BytesIO
from typing import Literal

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from model.boxes import is_valid_box
from service.errors import (
    CorruptFileError,
    EmptyFileError,
    InvalidPagesJsonError,
    TooManyPagesError,
    TooManyPixelsError,
    UnsupportedFormatError,
)
from service.ingest import image_headers, pdf
from service.ingest.page import (
    Page,
    Word,
    check_page_count,
    check_page_pixels,
    check_page_words,
    check_upload_bytes,
)
from service.ingest.selection import (
    last_selected_page,
    parse_page_selection,
    resolve_page_selection,
    selected_pages,
)
from service.settings import Settings

__all__ = [
    "DocumentFormat",
    "JsonDocument",
    "Page",
    "Word",
    "check_document",
    "decode_image",
    "detect_format",
    "load_document",
    "parse_page_selection",
    "resolve_page_selection",
]

DocumentFormat = Literal["pdf", "png", "jpeg", "tiff", "bmp", "webp", "json"]
IMAGE_FORMATS: dict[str, str] = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "bmp": "BMP", "webp": "WEBP"}
SUPPORTED = "PDF, PNG, JPEG, TIFF, BMP, WebP or JSON pages"
# Formats we recognise but do not read, so the error can say what the upload really is.
KNOWN_UNSUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (or an Office document)"),
    (b"\xd0\xcf\x11\xe0", "an old Office document"),
    (b"%!PS", "a PostScript file"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"{\\rtf", "an RTF document"),
)
BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
# The most TIFF frames counted for a selection of pages past the page limit: Pillow's seek to frame n costs
# n^2 steps (2,000 frames: about 0.1 s).
MAX_TIFF_FRAMES = 2_000


def _is_bmp(data: bytes) -> bool:
    return data[:2] == b"BM" and len(data) >= 18 and int.from_bytes(data[14:18], "little") in BMP_HEADER_SIZES


def _image_format(data: bytes) -> DocumentFormat | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "bmp" if _is_bmp(data) else None


def detect_format(data: bytes) -> DocumentFormat:
    """The format of an upload from its first bytes. EmptyFileError, UnsupportedFormatError."""
    head = data[:1024]
    if not head.strip():
        raise EmptyFileError("the upload is empty")
    found = _image_format(data)  # signatures at offset 0 first: an image or JSON may quote "%PDF-"
    if found is not None:
        return found
    if head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] in (b"{", b"["):
        return "json"
    if b"%PDF-" in head:  # readers accept a PDF header anywhere in the first 1 KB
        return "pdf"
    what = next((name for magic, name in KNOWN_UNSUPPORTED if head.startswith(magic)), "not a format we read")
    raise UnsupportedFormatError(f"the upload is {what}; send {SUPPORTED}")


def _to_8bit(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        values = values / 257.0
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L")


def normalise_mode(image: Image.Image) -> Image.Image:
    """Any PIL mode -> L or RGB; transparent pixels become white."""
    if image.mode in ("L", "RGB"):
        return image
    if image.mode.startswith("I") or image.mode == "F":
        return _to_8bit(image)
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("P", "PA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _open(data: bytes, fmt: str, settings: Settings) -> Image.Image:
    """Open lazily (header only): too-big images are refused before any pixel is decoded, and images with
    more structure than any scan has before Pillow walks it (`service.ingest.image_headers`)."""
    image_headers.check_header(data, fmt)
    try:
        image = Image.open(BytesIO(data), formats=[IMAGE_FORMATS[fmt]])
    except Image.DecompressionBombError as exc:
        raise TooManyPixelsError(f"the image is too large to decode safely: {exc}") from exc
    except Exception as exc:  # PIL plugins raise many types on bad headers
        raise CorruptFileError(f"the {fmt.upper()} image cannot be read: {exc}") from exc
    check_page_pixels(image.width, image.height, settings, "the image")
    return image


def _frame(image: Image.Image, index: int, settings: Settings) -> Image.Image:
    """Frame `index` decoded, upright (EXIF orientation) and in mode L or RGB."""
    try:
        image.seek(index)
    except Exception as exc:
        raise CorruptFileError(f"page {index + 1} of the image cannot be read: {exc}") from exc
    check_page_pixels(image.width, image.height, settings, f"page {index + 1}")
    try:
        image.load()
        return normalise_mode(ImageOps.exif_transpose(image))
    except Exception as exc:  # truncated data, bad compression, broken EXIF ...
        raise CorruptFileError(f"page {index + 1} of the image cannot be decoded: {exc}") from exc


def _page_count(data: bytes, fmt: str, settings: Settings, selection: str | None) -> int:
    """The pages of an image: 1, or a TIFF's frames, counted only as far as the selection needs: to the page
    limit (a TIFF with more frames is refused unless pages are selected), or to the last selected page when
    that is later, but never past MAX_TIFF_FRAMES. A count over what was needed is a lower bound."""
    if fmt != "tiff":
        return 1
    last = last_selected_page(selection)
    needed = settings.max_pages if last is None else max(settings.max_pages, min(last, MAX_TIFF_FRAMES))
    count = image_headers.tiff_frame_count(data, needed)
    if count <= needed:
        return count
    if last is None:
        raise TooManyPagesError(
            f"the document has more than {needed} pages, the limit is {needed}; select fewer pages"
        )
    if last > needed:
        raise TooManyPagesError(f"the TIFF has more than {needed} pages: pages after {needed} cannot be read")
    return count


def decode_image(data: bytes, fmt: str, settings: Settings) -> Image.Image:
    """The first page of an image file, decoded under the settings' limits (used for JSON pages too)."""
    with _open(data, fmt, settings) as image:
        return _frame(image, 0, settings)


def _load_image(data: bytes, fmt: str, settings: Settings, selection: str | None) -> list[Page]:
    with _open(data, fmt, settings) as image:
        indices = resolve_page_selection(selection, _page_count(data, fmt, settings, selection))
        check_page_count(len(indices), settings)
        frames = [(index, _frame(image, index, settings)) for index in indices]
    return [Page(index, frame, frame.width, frame.height, None, "image") for index, frame in frames]


class JsonWord(BaseModel):
    """One recognised word: text, pixel box `[x0, y0, x1, y1]` and (optional) text line id."""

    text: str
    box: tuple[float, float, float, float]
    line: int | None = Field(None, ge=0)

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("word text is empty")
        return text

    @field_validator("box")
    @classmethod
    def _box_ordered(cls, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if box[0] > box[2] or box[1] > box[3]:
            raise ValueError(f"box {list(box)} is not ordered (x0 <= x1, y0 <= y1)")
        return box


class JsonPage(BaseModel):
    """One already-recognised page; `image` is an optional base64 PNG or JPEG of `width` x `height`."""

    width: int = Field(gt=0, le=1_000_000)
    height: int = Field(gt=0, le=1_000_000)
    image: str | None = None
    words: list[JsonWord]

    @model_validator(mode="after")
    def _boxes_inside(self) -> "JsonPage":
        for number, word in enumerate(self.words):
            if not is_valid_box(word.box, self.width, self.height):
                raise ValueError(
                    f"word {number} box {list(word.box)} is outside the {self.width}x{self.height} page"
                )
        return self


class JsonDocument(BaseModel):
    """An already-recognised document: `{"pages": [{"width", "height", "image"?, "words": [...]}]}`."""

    pages: list[JsonPage] = Field(min_length=1)


def _validation_detail(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    shown = [f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "invalid JSON pages: " + "; ".join(shown) + more


def _json_image(page: JsonPage, number: int, settings: Settings) -> Image.Image | None:
    if page.image is None:
        return None
    try:
        data = base64.b64decode(page.image, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidPagesJsonError(f"page {number}: image is not valid base64: {exc}") from exc
    fmt = _image_format(data)
    if fmt not in ("png", "jpeg"):
        raise InvalidPagesJsonError(f"page {number}: image must be a base64 PNG or JPEG")
    image = decode_image(data, fmt, settings)
    if image.size != (page.width, page.height):
        raise InvalidPagesJsonError(
            f"page {number}: image is {image.width}x{image.height}, the page says {page.width}x{page.height}"
        )
    return image


def _json_page(index: int, page: JsonPage, settings: Settings) -> Page:
    check_page_pixels(page.width, page.height, settings, f"page {index + 1}")
    check_page_words(len(page.words), settings, f"page {index + 1}")
    words = [Word(w.text, w.box, 1.0, w.line) for w in page.words]
    image = _json_image(page, index + 1, settings)
    return Page(index, image, page.width, page.height, words, "json")


def _parse_json(data: bytes) -> JsonDocument:
    try:
        return JsonDocument.model_validate_json(data.removeprefix(b"\xef\xbb\xbf"))
    except ValidationError as exc:
        raise InvalidPagesJsonError(_validation_detail(exc)) from exc


def _load_json(data: bytes, settings: Settings, selection: str | None) -> list[Page]:
    document = _parse_json(data)
    indices = resolve_page_selection(selection, len(document.pages))
    check_page_count(len(indices), settings)
    return [_json_page(index, document.pages[index], settings) for index in indices]


def _check_size(data: bytes, settings: Settings) -> None:
    check_upload_bytes(len(data), settings.max_upload_bytes)


def _load_pdf(data: bytes, settings: Settings, selection: str | None) -> list[Page]:
    info = pdf.pdf_info(data, settings)
    indices = resolve_page_selection(selection, info.page_count)
    check_page_count(len(indices), settings)
    return pdf.load_pdf_pages(data, pdf.with_sizes(data, info, indices, settings), indices, settings)


def load_document(data: bytes, settings: Settings, pages_selection: str | None = None) -> list[Page]:
    """Every selected page of an upload, in document order; raises only DocumentError subclasses.

    `pages_selection` is like `"1-3,5"` (1-based). Pages from a PDF text layer or JSON carry their words;
    the others have `words=None` and need OCR (`service.ingest.ocr.ocr_pages`).
    """
    _check_size(data, settings)
    fmt = detect_format(data)
    if fmt == "pdf":
        return _load_pdf(data, settings, pages_selection)
    if fmt == "json":
        return _load_json(data, settings, pages_selection)
    return _load_image(data, fmt, settings, pages_selection)


def document_pages(
    data: bytes, settings: Settings, pages_selection: str | None = None
) -> tuple[DocumentFormat, list[int]]:
    """The format and the 0-based indices of the pages `load_document` returns for this selection, with
    the same errors for the selection and the page count, from the document's header or page list (images
    are not decoded, a PDF is not rasterised): lets a caller load a long document a few pages at a time."""
    _check_size(data, settings)
    fmt = detect_format(data)
    if fmt == "pdf":
        count = pdf.pdf_info(data, settings).page_count
    elif fmt == "json":
        count = len(_parse_json(data).pages)
    else:
        with _open(data, fmt, settings):
            count = _page_count(data, fmt, settings, pages_selection)
    indices = resolve_page_selection(pages_selection, count)
    check_page_count(len(indices), settings)
    return fmt, indices


def _checked_indices(selection: str | None, page_count: int, settings: Settings) -> list[int]:
    """The pages `check_document` decodes: the selected ones the document has (all without a selection, the
    first when none is left), under the page limit. Selected pages beyond the end are not an error here:
    `load_document` reports them when the document is processed with that selection."""
    indices = selected_pages(selection, page_count)
    check_page_count(len(indices), settings)
    return indices or [0]


def _check_image(data: bytes, fmt: str, settings: Settings, selection: str | None) -> None:
    """Decode every checked frame in full: `Image.verify()` passes truncated JPEG and TIFF data."""
    with _open(data, fmt, settings) as image:
        for index in _checked_indices(selection, _page_count(data, fmt, settings, selection), settings):
            _frame(image, index, settings)


def _check_json(data: bytes, settings: Settings, selection: str | None) -> None:
    document = _parse_json(data)
    for index in _checked_indices(selection, len(document.pages), settings):
        _json_page(index, document.pages[index], settings)


def _check_pdf(data: bytes, settings: Settings, selection: str | None) -> None:
    info = pdf.pdf_info(data, settings)
    indices = _checked_indices(selection, info.page_count, settings)
    pdf.check_page_sizes(pdf.with_sizes(data, info, indices, settings), indices, settings)


def check_document(data: bytes, settings: Settings, pages_selection: str | None = None) -> DocumentFormat:
    """The format of an upload, once it is known that `load_document` can read it: the same
    `DocumentError` as `load_document` for the same bytes, settings and selection, but nothing is kept.

    Images and JSON pages (their embedded images included) are decoded in full; a PDF is only opened with
    `pdfinfo` (page count and sizes against the page and pixel limits), never rasterised, so a PDF whose
    pages poppler cannot draw still fails later. Blocking: call it from a worker thread.
    """
    _check_size(data, settings)
    fmt = detect_format(data)
    if fmt == "pdf":
        _check_pdf(data, settings, pages_selection)
    elif fmt == "json":
        _check_json(data, settings, pages_selection)
    else:
        _check_image(data, fmt, settings, pages_selection)
    return fmt
