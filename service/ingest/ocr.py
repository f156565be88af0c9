"""Words from page images with tesseract (the Debian binary, `service.ingest.tesseract`): `ocr_pages`.

Each page that needs OCR is turned upright first (tesseract OSD; pages with too little text count as
upright), upscaled when its resolution is low (`accurate` quality), recognised (tesseract's TSV), and its
boxes mapped back to the pixels of the page image as returned. Pages run in parallel threads, each tesseract
process on one thread, in an environment of its own. A page that fails gets `error` set; the others still
succeed. The geometry and parsing helpers are small pure functions.
"""

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from PIL import Image

from model.boxes import BoxPx, order_box, union_box
from service.errors import OcrLanguageError
from service.ingest.page import Page, Word
from service.ingest.tesseract import (
    TesseractError,
    TesseractNotFoundError,
    TesseractTimeoutError,
    installed_languages,
    orientation,
    recognise,
)
from service.settings import OcrQuality, Settings

DEFAULT_PSM: dict[OcrQuality, int] = {"fast": 3, "accurate": 11}
TARGET_DPI: dict[OcrQuality, float] = {"fast": 0.0, "accurate": 300.0}
OSD_DPI = 200.0  # OSD is unreliable on ~100 dpi scans and reliable from ~200 dpi
MAX_UPSCALE = 2.0
MIN_UPSCALE = 1.25  # smaller gains are not worth resampling
OSD_MIN_CONFIDENCE = 2.0
ASSUMED_PAGE_INCHES = 11.0  # the long side of Letter; A4 is 11.7


def check_languages(spec: str) -> None:
    """OcrLanguageError unless every language of `spec` (e.g. `eng+deu`) is installed."""
    missing = [language for language in spec.split("+") if language not in installed_languages()]
    if missing:
        installed = ", ".join(sorted(installed_languages() - {"osd"}))
        raise OcrLanguageError(
            f"OCR language {'+'.join(missing)!r} is not installed; installed: {installed} (Debian packages "
            "tesseract-ocr-LANG add more)"
        )


def effective_dpi(width: int, height: int, dpi: float | None) -> float:
    """The page's resolution: the known one (rasterised PDF) or one guessed from a Letter-sized page."""
    if dpi:
        return dpi
    return max(width, height) / ASSUMED_PAGE_INCHES


def upscale_factor(dpi: float, target_dpi: float, pixels: int, max_pixels: int) -> float:
    """How much to enlarge a `dpi` page to reach `target_dpi`: 1.0 or a factor in [1.25, 2], under the
    pixel limit."""
    if dpi <= 0 or target_dpi <= 0 or pixels <= 0:
        return 1.0
    factor = min(MAX_UPSCALE, target_dpi / dpi, math.sqrt(max_pixels / pixels))
    return factor if factor >= MIN_UPSCALE else 1.0


def rotation_from_osd(osd: Mapping[str, Any]) -> int:
    """Degrees clockwise to turn the page upright (0, 90, 180, 270); 0 when OSD is not confident."""
    try:
        rotate, confidence = int(osd.get("rotate", 0)) % 360, float(osd.get("orientation_conf", 0.0))
    except (TypeError, ValueError):
        return 0
    return rotate if rotate in (90, 180, 270) and confidence >= OSD_MIN_CONFIDENCE else 0


def _scaled_box(
    left: float, top: float, width: float, height: float, scale: float, size: tuple[int, int]
) -> BoxPx:
    x0, y0 = round(left / scale), round(top / scale)
    x1, y1 = round((left + width) / scale), round((top + height) / scale)
    page_w, page_h = size
    return (
        float(min(max(x0, 0), page_w)),
        float(min(max(y0, 0), page_h)),
        float(min(max(x1, 0), page_w)),
        float(min(max(y1, 0), page_h)),
    )


def parse_tesseract_data(
    data: Mapping[str, Sequence[Any]], scale: float, size: tuple[int, int]
) -> list[Word]:
    """tesseract's TSV columns (`service.ingest.tesseract.recognise`) -> words, boxes divided by `scale` and
    clamped to `size`.

    Empty and negative-confidence rows are dropped; the line id numbers the (block, paragraph, line)
    triples of the page in order of appearance, so it is unique per page.
    """
    line_ids: dict[tuple[int, int, int], int] = {}
    words: list[Word] = []
    for i, raw_text in enumerate(data.get("text", [])):
        text, confidence = str(raw_text).strip(), float(data["conf"][i])
        if not text or confidence < 0:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        line_id = line_ids.setdefault(key, len(line_ids))
        left, top, width, height = (float(data[name][i]) for name in ("left", "top", "width", "height"))
        box = _scaled_box(left, top, width, height, scale, size)
        words.append(Word(text, box, min(confidence, 100.0) / 100.0, line_id, key[0]))
    return words


def line_boxes(words: Sequence[Word]) -> list[BoxPx]:
    """Each word's line box: the union of the boxes of the words sharing its `line_id` (its own box when
    it has none)."""
    lines: dict[int, BoxPx] = {}
    for word in words:
        if word.line_id is not None:
            previous = lines.get(word.line_id)
            lines[word.line_id] = (
                union_box([previous, word.box_px]) if previous is not None else order_box(word.box_px)
            )
    return [lines[w.line_id] if w.line_id is not None else order_box(w.box_px) for w in words]


def _enlarged(image: Image.Image, factor: float) -> Image.Image:
    if factor == 1.0:
        return image
    size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, Image.Resampling.LANCZOS)


def detect_rotation(image: Image.Image, dpi: float, settings: Settings) -> int:
    """Clockwise degrees that make the page upright, by tesseract OSD; 0 when OSD cannot tell."""
    factor = upscale_factor(dpi, OSD_DPI, image.width * image.height, settings.max_page_pixels)
    enlarged, osd_dpi = _enlarged(image, factor), round(dpi * factor)
    try:
        osd = orientation(enlarged, osd_dpi, settings.ocr_page_timeout_s)
    except (TesseractTimeoutError, TesseractNotFoundError):
        raise
    except TesseractError:  # "Too few characters": a page with little text
        return 0
    return rotation_from_osd(osd)


def _recognise(page: Page, settings: Settings) -> Page:
    assert page.image is not None
    image, dpi = page.image, effective_dpi(page.width, page.height, page.dpi)
    rotation = detect_rotation(image, dpi, settings) if settings.ocr_detect_orientation else 0
    if rotation:
        image = image.rotate(-rotation, expand=True)
    quality = settings.ocr_quality
    factor = upscale_factor(dpi, TARGET_DPI[quality], image.width * image.height, settings.max_page_pixels)
    psm = settings.ocr_psm if settings.ocr_psm is not None else DEFAULT_PSM[quality]
    data = recognise(
        _enlarged(image, factor),
        settings.ocr_language,
        psm,
        round(dpi * factor),
        settings.ocr_page_timeout_s,
    )
    words = parse_tesseract_data(data, factor, image.size)
    return replace(page, image=image, width=image.width, height=image.height, words=words, rotation=rotation)


def _failure(exc: Exception, settings: Settings) -> str:
    if isinstance(exc, TesseractNotFoundError):
        return f"OCR failed: {exc}"
    if isinstance(exc, TesseractTimeoutError):
        return f"OCR took longer than {settings.ocr_page_timeout_s:g} s on this page"
    return f"OCR failed: {exc}"


def ocr_page(page: Page, settings: Settings) -> Page:
    """The page with its words recognised (or with `error` set); pages that need no OCR come back as is."""
    if not page.needs_ocr:
        return page
    try:
        return _recognise(page, settings)
    except (TesseractError, OSError, ValueError, TypeError) as exc:
        return replace(page, error=_failure(exc, settings))


def ocr_workers(settings: Settings, pages: int) -> int:
    """Threads for `pages` pages: the setting (0 = one per CPU core), at most one per page."""
    wanted = settings.ocr_workers or os.cpu_count() or 1
    return max(1, min(wanted, pages))


def ocr_pages(pages: Sequence[Page], settings: Settings) -> list[Page]:
    """Every page with words: pages needing OCR are recognised in parallel, in document order."""
    todo = [page for page in pages if page.needs_ocr]
    for page in todo:
        assert page.image is not None
        page.image.load()  # decode once, before threads share the image object
    workers = ocr_workers(settings, len(todo))
    if workers == 1:
        return [ocr_page(page, settings) for page in pages]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr") as pool:
        return list(pool.map(lambda page: ocr_page(page, settings), pages))
