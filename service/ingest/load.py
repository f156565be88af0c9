"""Upload bytes -> pages: `open_document(data, settings, pages_selection)` reads the format, the page count
and the selection once (a `DocumentSource`) and loads pages by index; `load_document` loads them all.

The format comes from the content (magic bytes), never from a file name or a declared content type: PDF
(`service.ingest.pdf`), PNG, JPEG, TIFF (each frame a page), BMP, WebP, and already-recognised JSON pages
(`{"pages": [...]}`, see `JsonDocument`); images are decoded by `service.ingest.images`. Each format has
its reader (`READERS`), chosen once per upload. Limits (bytes, pages, pixels per page)
come from `Settings`; every bad input raises a `service.errors.DocumentError` subclass and nothing else.
"""

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from PIL import Image
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from model.boxes import is_valid_box
from service.errors import (
    EmptyFileError,
    InvalidPagesJsonError,
    UnsupportedFormatError,
)
from service.ingest import pdf
from service.ingest.images import IMAGE_FORMATS, ImageReader, decode_image, image_format
from service.ingest.page import (
    Page,
    Word,
    check_page_count,
    check_page_pixels,
    check_page_words,
    check_upload_bytes,
)
from service.ingest.selection import (
    parse_page_selection,
    resolve_page_selection,
    selected_pages,
)
from service.settings import Settings

__all__ = [
    "DocumentFormat",
    "DocumentSource",
    "JsonDocument",
    "Page",
    "Word",
    "check_document",
    "decode_image",
    "detect_format",
    "load_document",
    "open_document",
    "parse_page_selection",
    "resolve_page_selection",
]

DocumentFormat = Literal["pdf", "png", "jpeg", "tiff", "bmp", "webp", "json"]
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


def detect_format(data: bytes) -> DocumentFormat:
    """The format of an upload from its first bytes. EmptyFileError, UnsupportedFormatError."""
    head = data[:1024]
    if not head.strip():
        raise EmptyFileError("the upload is empty")
    found = image_format(data)  # signatures at offset 0 first: an image or JSON may quote "%PDF-"
    if found is not None:
        return found
    if head.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] in (b"{", b"["):
        return "json"
    if b"%PDF-" in head:  # readers accept a PDF header anywhere in the first 1 KB
        return "pdf"
    what = next((name for magic, name in KNOWN_UNSUPPORTED if head.startswith(magic)), "not a format we read")
    raise UnsupportedFormatError(f"the upload is {what}; send {SUPPORTED}")


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
    fmt = image_format(data)
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


# --- one reader per format, chosen once per upload ------------------------------------------------------


class PageReader(Protocol):
    """The pages of an upload of one format, opened once: how many there are, and pages by 0-based index,
    decoded (`load`) or only checked (`check`: the errors `load` gives, nothing kept)."""

    page_count: int

    def load(self, indices: Sequence[int]) -> list[Page]: ...

    def check(self, indices: Sequence[int]) -> None: ...


class JsonReader:
    """JSON pages, parsed and validated once."""

    def __init__(self, data: bytes, fmt: DocumentFormat, settings: Settings, selection: str | None) -> None:
        self.document, self.settings = _parse_json(data), settings
        self.page_count = len(self.document.pages)

    def load(self, indices: Sequence[int]) -> list[Page]:
        return [_json_page(index, self.document.pages[index], self.settings) for index in indices]

    def check(self, indices: Sequence[int]) -> None:
        """Every page validated, its embedded image decoded in full, one at a time."""
        for index in indices:
            _json_page(index, self.document.pages[index], self.settings)


class PdfReader:
    """A PDF, opened once with `pdfinfo` (page count, sizes of the first pages); pages rasterised per call."""

    def __init__(self, data: bytes, fmt: DocumentFormat, settings: Settings, selection: str | None) -> None:
        self.data, self.settings = data, settings
        self.info = pdf.pdf_info(data, settings)
        self.page_count = self.info.page_count

    def _sized(self, indices: Sequence[int]) -> pdf.PdfInfo:
        """The info with the sizes of `indices`, kept: pages past the first ones cost one more `pdfinfo`
        once, not once per call."""
        self.info = pdf.with_sizes(self.data, self.info, indices, self.settings)
        return self.info

    def load(self, indices: Sequence[int]) -> list[Page]:
        return pdf.load_pdf_pages(self.data, self._sized(indices), indices, self.settings)

    def check(self, indices: Sequence[int]) -> None:
        """Page sizes against the pixel limit; never rasterised."""
        pdf.check_page_sizes(self._sized(indices), indices, self.settings)


ReaderType = Callable[[bytes, DocumentFormat, Settings, str | None], PageReader]
READERS: dict[DocumentFormat, ReaderType] = {
    "pdf": PdfReader,
    "json": JsonReader,
    **dict.fromkeys(IMAGE_FORMATS, ImageReader),
}


def open_reader(data: bytes, settings: Settings, selection: str | None) -> tuple[DocumentFormat, PageReader]:
    """The format of an upload (from its content) and its reader: the one format dispatch. The upload's
    size is checked first; `selection` tells a TIFF how far its frames need counting."""
    check_upload_bytes(len(data), settings.max_upload_bytes)
    fmt = detect_format(data)
    return fmt, READERS[fmt](data, fmt, settings, selection)


@dataclass(frozen=True)
class DocumentSource:
    """An upload read once: its format and the 0-based indices of the selected pages (sorted, resolved
    against the page count and under the page limit); `load` decodes any of them, a few at a time if need
    be, without reading the format, the page count or the selection again."""

    format: DocumentFormat
    indices: tuple[int, ...]
    reader: PageReader

    def chunks(self, size: int) -> list[tuple[int, ...]]:
        """The selected indices in runs of at most `size`, in document order."""
        return [self.indices[start : start + size] for start in range(0, len(self.indices), size)]

    def load(self, indices: Sequence[int] | None = None) -> list[Page]:
        """Pages `indices` (default: every selected page), in that order; only DocumentError subclasses."""
        return self.reader.load(self.indices if indices is None else indices)


def open_document(data: bytes, settings: Settings, pages_selection: str | None = None) -> DocumentSource:
    """The upload's format, page count and selected pages, from its header or page list (images are not
    decoded, a PDF is not rasterised), with the errors `load_document` gives for them.

    `pages_selection` is like `"1-3,5"` (1-based); PageSelectionError for a page beyond the end,
    TooManyPagesError over the page limit.
    """
    fmt, reader = open_reader(data, settings, pages_selection)
    indices = resolve_page_selection(pages_selection, reader.page_count)
    check_page_count(len(indices), settings)
    return DocumentSource(fmt, tuple(indices), reader)


def load_document(data: bytes, settings: Settings, pages_selection: str | None = None) -> list[Page]:
    """Every selected page of an upload, in document order; raises only DocumentError subclasses.

    Pages from a PDF text layer or JSON carry their words; the others have `words=None` and need OCR
    (`service.ingest.ocr.ocr_pages`). A long document is better read a few pages at a time from
    `open_document`.
    """
    return open_document(data, settings, pages_selection).load()


def _checked_indices(selection: str | None, page_count: int, settings: Settings) -> list[int]:
    """The pages `check_document` decodes: the selected ones the document has (all without a selection, the
    first when none is left), under the page limit. Selected pages beyond the end are not an error here:
    `load_document` reports them when the document is processed with that selection."""
    indices = selected_pages(selection, page_count)
    check_page_count(len(indices), settings)
    return indices or [0]


def check_document(data: bytes, settings: Settings, pages_selection: str | None = None) -> DocumentFormat:
    """The format of an upload, once it is known that `load_document` can read it: the same
    `DocumentError` as `load_document` for the same bytes, settings and selection, but nothing is kept.

    Images and JSON pages (their embedded images included) are decoded in full; a PDF is only opened with
    `pdfinfo` (page count and sizes against the page and pixel limits), never rasterised, so a PDF whose
    pages poppler cannot draw still fails later. Blocking: call it from a worker thread.
    """
    fmt, reader = open_reader(data, settings, pages_selection)
    reader.check(_checked_indices(pages_selection, reader.page_count, settings))
    return fmt
