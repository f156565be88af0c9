"""The data every ingestion and OCR stage passes on: pages and their words. No torch, no I/O.

`service.ingest.load` builds `Page`s from an upload; `service.ingest.ocr` fills in the words of the pages that
need OCR.
Boxes are `box_px`: `(x0, y0, x1, y1)` in pixels of the page image as returned (see `model.boxes`).
"""

from dataclasses import dataclass
from typing import Literal

from PIL import Image

from model.boxes import BoxPx
from service.errors import TooManyPagesError, TooManyPixelsError, TooManyWordsError, UploadTooLargeError
from service.settings import Settings

PageSource = Literal["image", "pdf-text", "json"]


@dataclass(frozen=True, slots=True)
class Word:
    """One word: its text, pixel box, confidence in [0, 1] and the ids of its text line and block.

    `line_id` and `block_id` are unique within a page (None when the source does not say). Words from a PDF
    text layer or a JSON upload have confidence 1.0.
    """

    text: str
    box_px: BoxPx
    confidence: float = 1.0
    line_id: int | None = None
    block_id: int | None = None


@dataclass(frozen=True)
class Page:
    """One page of a document.

    `index` is the 0-based page number in the uploaded document. `words` is None until someone recognised
    them (OCR); a PDF text layer or a JSON upload fills them in directly. `dpi` is known for rasterised
    PDF pages only. `rotation` is how many degrees clockwise OCR turned the image to make it upright (the
    returned `image` is already turned, and every box refers to it). `error` says why OCR failed.
    """

    index: int
    image: Image.Image | None
    width: int
    height: int
    words: list[Word] | None = None
    source: PageSource = "image"
    dpi: float | None = None
    rotation: int = 0
    error: str | None = None

    @property
    def needs_ocr(self) -> bool:
        """True when the page has an image but no words yet (and OCR has not already failed on it)."""
        return self.words is None and self.image is not None and self.error is None


def check_page_count(count: int, settings: Settings) -> None:
    """Raise TooManyPagesError when a document has more pages than the settings allow."""
    if count > settings.max_pages:
        raise TooManyPagesError(
            f"the document has {count} pages, the limit is {settings.max_pages}; select fewer pages"
        )


def check_page_words(count: int, settings: Settings, where: str) -> None:
    """Raise TooManyWordsError when a page brings more words than the settings allow."""
    if count > settings.max_words_per_page:
        raise TooManyWordsError(
            f"{where} has {count} words, the limit is {settings.max_words_per_page} words per page"
        )


def check_page_pixels(width: int, height: int, settings: Settings, where: str = "page") -> None:
    """Raise TooManyPixelsError when a `width` x `height` page is over the pixel limit."""
    if width * height > settings.max_page_pixels:
        raise TooManyPixelsError(
            f"{where} is {width}x{height} = {width * height} pixels, "
            f"the limit is {settings.max_page_pixels} pixels per page"
        )


def check_upload_bytes(size: int, limit: int, what: str = "the upload") -> None:
    """Raise UploadTooLargeError when `size` bytes (of a file, or read of it so far) are over `limit`: the
    one check of a document's size, whether it came in a request or from a file."""
    if size > limit:
        raise UploadTooLargeError(f"{what} has more than {limit} bytes, the limit")
