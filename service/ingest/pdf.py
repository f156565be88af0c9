"""PDF pages through poppler: page sizes (`pdfinfo`), images (`pdftoppm`) and text layers (`pdftotext`).

Born-digital pages keep the words of their text layer (`pdftotext -bbox-layout`, boxes scaled from PDF
points to the rasterised pixels) and need no OCR; pages without a usable text layer are left to OCR.
Every poppler failure becomes a domain error (`service.errors`); nothing else escapes.
"""

import logging
import re
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from service.errors import (
    CorruptFileError,
    DocumentError,
    DocumentTimeoutError,
    EncryptedPdfError,
    NotReadyError,
)
from service.ingest.page import Page, Word, check_page_pixels, check_page_words
from service.settings import Settings
from service.threads import child_environment

LOG = logging.getLogger(__name__)
POINTS_PER_INCH = 72.0
XHTML = "{http://www.w3.org/1999/xhtml}"
_SIZE_LINE = re.compile(r"^Page\s+(\d+)\s+size:\s+([\d.]+)\s+x\s+([\d.]+)\s+pts", re.MULTILINE)
_ROT_LINE = re.compile(r"^Page\s+(\d+)\s+rot:\s+(-?\d+)", re.MULTILINE)
_PAGES_LINE = re.compile(r"^Pages:\s+(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class PdfInfo:
    """Page count and the displayed size in points (width, height after its /Rotate) of the first pages
    (`sizes_pt[i]` is page i + 1's; see `pdf_info` for how many)."""

    page_count: int
    sizes_pt: tuple[tuple[float, float], ...]

    def size_pt(self, index: int) -> tuple[float, float]:
        """The size of page `index` (0-based); CorruptFileError for a page without an area (poppler gives
        0 x 0 points to a page whose page tree loops)."""
        width, height = self.sizes_pt[index]
        if not (width > 0 and height > 0):
            raise CorruptFileError(
                f"page {index + 1} of the PDF has no size ({width:g} x {height:g} points): its page tree is "
                "broken (a loop?)"
            )
        return width, height


def _poppler_error(tool: str, stderr: bytes) -> DocumentError:
    message = stderr.decode("utf-8", "replace").strip()
    if "password" in message.lower():
        return EncryptedPdfError("the PDF is encrypted and cannot be opened without a password")
    last = message.splitlines()[-1] if message else f"{tool} failed"
    return CorruptFileError(f"the PDF cannot be read (corrupt or truncated): {last}")


def _run_poppler(args: list[str], data: bytes, timeout_s: float) -> bytes:
    """Run one poppler tool on `data` (stdin); its stdout, or a domain error."""
    try:
        done = subprocess.run(
            args, input=data, capture_output=True, timeout=timeout_s, env=child_environment(1), check=False
        )
    except FileNotFoundError as exc:
        raise NotReadyError(f"{args[0]} is not installed (Debian package poppler-utils)") from exc
    except subprocess.TimeoutExpired as exc:
        raise DocumentTimeoutError(f"{args[0]} took longer than {timeout_s:g} s on this PDF") from exc
    if done.returncode != 0:
        raise _poppler_error(args[0], done.stderr)
    return done.stdout


def parse_pdfinfo(text: str, last: int | None = None) -> PdfInfo:
    """`pdfinfo -f 1 -l LAST` output -> PdfInfo with the sizes of pages 1 to LAST (every page when `last`
    is None), each turned by the page's rotation."""
    found = _PAGES_LINE.search(text)
    if found is None:
        raise CorruptFileError("the PDF cannot be read: poppler found no page count")
    count = int(found.group(1))
    shown = count if last is None else min(count, last)
    rotations = {int(m.group(1)): int(m.group(2)) % 360 for m in _ROT_LINE.finditer(text)}
    sizes: dict[int, tuple[float, float]] = {}
    for match in _SIZE_LINE.finditer(text):
        number, width, height = int(match.group(1)), float(match.group(2)), float(match.group(3))
        sizes[number] = (height, width) if rotations.get(number, 0) in (90, 270) else (width, height)
    if count < 1 or any(n not in sizes for n in range(1, shown + 1)):
        raise CorruptFileError(f"the PDF cannot be read: poppler reports {count} pages, {len(sizes)} sizes")
    return PdfInfo(count, tuple(sizes[n] for n in range(1, shown + 1)))


def pdf_info(data: bytes, settings: Settings, last: int = 0) -> PdfInfo:
    """Page count, and the sizes of pages 1 to `last` or to the page limit, whichever is later
    (EncryptedPdfError, CorruptFileError, DocumentTimeoutError). Never every page's: poppler walks the page
    tree up to the last page asked for, which takes seconds on a PDF of a few hundred thousand pages."""
    last = max(last, settings.max_pages)
    text = _run_poppler(["pdfinfo", "-f", "1", "-l", str(last), "-"], data, settings.pdf_timeout_s)
    return parse_pdfinfo(text.decode("utf-8", "replace"), last)


def with_sizes(data: bytes, info: PdfInfo, indices: Sequence[int], settings: Settings) -> PdfInfo:
    """`info`, or when a page of `indices` (0-based) is past the sizes it has, the info that has them."""
    last = max(indices, default=-1) + 1
    return info if last <= len(info.sizes_pt) else pdf_info(data, settings, last)


def pixel_size(size_pt: tuple[float, float], dpi: float) -> tuple[int, int]:
    """Pixel size of a page of `size_pt` points rasterised at `dpi` (as pdftoppm rounds it)."""
    return (
        max(1, round(size_pt[0] * dpi / POINTS_PER_INCH)),
        max(1, round(size_pt[1] * dpi / POINTS_PER_INCH)),
    )


def contiguous_runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted 0-based indices -> inclusive runs: [0, 1, 2, 4] -> [(0, 2), (4, 4)]."""
    runs: list[tuple[int, int]] = []
    for index in indices:
        if runs and index == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return runs


def rasterise(data: bytes, indices: Sequence[int], settings: Settings) -> list[Image.Image]:
    """Images of the pages `indices` (0-based, sorted) at `settings.pdf_dpi`, in that order."""
    images: list[Image.Image] = []
    with tempfile.TemporaryDirectory(prefix="docextract-pdf-") as folder:
        for first, last in contiguous_runs(indices):
            root = Path(folder) / f"run{first}"
            args = ["pdftoppm", "-r", str(settings.pdf_dpi), "-f", str(first + 1), "-l", str(last + 1)]
            _run_poppler([*args, "-", str(root)], data, settings.pdf_timeout_s)
            files = sorted(Path(folder).glob(f"{root.name}-*.p?m"))  # page numbers zero-padded alike
            if len(files) != last - first + 1:
                raise CorruptFileError(
                    f"the PDF cannot be rasterised: pages {first + 1}-{last + 1} gave {len(files)} images"
                )
            images.extend(_loaded(path) for path in files)
    return images


def _loaded(path: Path) -> Image.Image:
    """The image in `path`, read into memory (the file is about to be deleted)."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"the PDF cannot be rasterised: {exc}") from exc


def _box(element: ET.Element) -> tuple[float, float, float, float]:
    return tuple(float(element.get(k, "0")) for k in ("xMin", "yMin", "xMax", "yMax"))  # type: ignore[return-value]


def _page_words(page: ET.Element) -> list[Word]:
    words: list[Word] = []
    blocks = page.iter(XHTML + "block")
    lines = ((block_id, line) for block_id, block in enumerate(blocks) for line in block.iter(XHTML + "line"))
    for line_id, (block_id, line) in enumerate(lines):
        for word in line.iter(XHTML + "word"):
            text = (word.text or "").strip()
            if text:
                words.append(Word(text, _box(word), 1.0, line_id, block_id))
    return words


def parse_bbox_layout(xhtml: str) -> list[list[Word]]:
    """`pdftotext -bbox-layout` XHTML -> each page's words, boxes in PDF points (top-left origin).

    Line and block ids count the page's lines and blocks in reading order. Raises ValueError when the
    XHTML does not parse.
    """
    try:
        root = ET.fromstring(xhtml)
    except ET.ParseError as exc:
        raise ValueError(f"pdftotext output does not parse: {exc}") from exc
    return [_page_words(page) for page in root.iter(XHTML + "page")]


def scale_words(words: Sequence[Word], sx: float, sy: float, width: int, height: int) -> list[Word]:
    """Words with boxes scaled by (sx, sy), rounded to whole pixels and clamped to a width x height page."""

    def scaled(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = (round(v * s) for v, s in zip(box, (sx, sy, sx, sy), strict=True))
        x0, x1 = min(max(0, x0), width), min(max(0, x1), width)
        y0, y1 = min(max(0, y0), height), min(max(0, y1), height)
        return (float(min(x0, x1)), float(min(y0, y1)), float(max(x0, x1)), float(max(y0, y1)))

    return [Word(w.text, scaled(w.box_px), w.confidence, w.line_id, w.block_id) for w in words]


def text_layer(data: bytes, indices: Sequence[int], settings: Settings) -> dict[int, list[Word]]:
    """Words in points of the pages `indices` that have a text layer; {} when poppler cannot give one."""
    found: dict[int, list[Word]] = {}
    for first, last in contiguous_runs(indices):
        args = [
            "pdftotext",
            "-bbox-layout",
            "-enc",
            "UTF-8",
            "-f",
            str(first + 1),
            "-l",
            str(last + 1),
            "-",
            "-",
        ]
        try:
            pages = parse_bbox_layout(
                _run_poppler(args, data, settings.pdf_timeout_s).decode("utf-8", "replace")
            )
        except (DocumentError, ValueError) as exc:
            LOG.warning("no text layer for pages %d-%d, falling back to OCR: %s", first + 1, last + 1, exc)
            continue
        found.update({first + i: words for i, words in enumerate(pages) if words})
    return found


def check_page_sizes(info: PdfInfo, indices: Sequence[int], settings: Settings) -> None:
    """TooManyPixelsError when one of the pages `indices` is over the pixel limit at `settings.pdf_dpi`."""
    for index in indices:
        width, height = pixel_size(info.size_pt(index), settings.pdf_dpi)
        check_page_pixels(width, height, settings, f"page {index + 1} at {settings.pdf_dpi} dpi")


def load_pdf_pages(data: bytes, info: PdfInfo, indices: Sequence[int], settings: Settings) -> list[Page]:
    """Pages `indices` (0-based, sorted) of a PDF: images, plus text-layer words where there are enough."""
    check_page_sizes(info, indices, settings)
    images = rasterise(data, indices, settings)
    texts = text_layer(data, indices, settings)
    pages: list[Page] = []
    for index, image in zip(indices, images, strict=True):
        words = texts.get(index, [])
        page = Page(index, image, image.width, image.height, None, "image", float(settings.pdf_dpi))
        if len(words) >= settings.pdf_text_min_words:
            check_page_words(len(words), settings, f"page {index + 1}'s text layer")
            width_pt, height_pt = info.size_pt(index)
            sx, sy = image.width / width_pt, image.height / height_pt
            scaled = scale_words(words, sx, sy, image.width, image.height)
            page = Page(index, image, image.width, image.height, scaled, "pdf-text", float(settings.pdf_dpi))
        pages.append(page)
    return pages
