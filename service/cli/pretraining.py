"""Unlabelled page images -> OCR'd pre-training pages for `docextract pretrain`. No torch.

Every PNG, JPEG or TIFF file under the given folders (recursively, so a FUNSD-format folder contributes
its images/ and its annotations are ignored) goes through the ingestion stages, as an upload would:
`service.ingest.load.load_document` (format from the content, EXIF orientation, each TIFF frame a page) and
`service.ingest.ocr.ocr_pages` (orientation, upscaling, tesseract). Each file's pages are cached in
`OUT/ocr/SHA256.json` (keyed by the file's content hash), with each upright page image as a PNG beside it,
so a rerun OCRs nothing again and the pages file stays valid when the folder moves. `OUT/pages.jsonl`
lists every page (`model.pretrain.data.PretrainPage`, image paths relative to OUT): the input of
`model.pretrain.loop`, also under torchrun.
"""

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from model.pretrain.data import PretrainPage, write_pages
from service.errors import DocumentError
from service.ingest.load import load_document
from service.ingest.ocr import ocr_pages
from service.ingest.page import Page
from service.settings import Settings

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
CACHE_DIR = "ocr"
PAGES_FILE = "pages.jsonl"
STORED_SIDE = 1000  # the stored page images' longer side; the model sees 224 x 224
logger = logging.getLogger(__name__)


@dataclass
class CorpusStats:
    files: int = 0
    cached: int = 0  # files whose OCR came from the cache
    skipped: int = 0  # unreadable files, or files with a failed page (retried next time)
    pages: int = 0
    words: int = 0


def find_images(folders: Iterable[Path]) -> list[Path]:
    """Image files under the folders (or the files themselves), sorted, each once."""
    found: set[Path] = set()
    for folder in folders:
        candidates = [Path(folder)] if Path(folder).is_file() else Path(folder).rglob("*")
        found.update(p.resolve() for p in candidates if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return sorted(found)


def _stored_image(image: Image.Image, path: Path) -> None:
    scale = STORED_SIDE / max(image.size)
    if scale < 1:
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
        )
    image.save(path)


def page_record(page: Page, name: str, image: str) -> PretrainPage:
    words = page.words or []
    return PretrainPage(
        name, image, page.width, page.height, [w.text for w in words], [list(w.box_px) for w in words]
    )


def ocr_file(path: Path, out_dir: Path, settings: Settings) -> tuple[list[PretrainPage], bool] | None:
    """(pages, from cache) of one file; None when it cannot be read or a page's OCR failed."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    cache = out_dir / CACHE_DIR / f"{digest}.json"
    if cache.is_file():
        return [PretrainPage(**p) for p in json.loads(cache.read_text(encoding="utf-8"))["pages"]], True
    try:
        pages = ocr_pages(load_document(data, settings), settings)
    except DocumentError as exc:
        logger.warning("%s: skipped: %s", path, exc)
        return None
    if failed := [p for p in pages if p.error]:
        logger.warning("%s: skipped (retried next time): %s", path, failed[0].error)
        return None
    records = []
    for page in pages:
        assert page.image is not None
        image = f"{CACHE_DIR}/{digest}-{page.index + 1}.png"
        _stored_image(page.image, out_dir / image)
        records.append(page_record(page, f"{path.stem}-{page.index + 1}", image))
    partial = cache.with_suffix(".tmp")
    partial.write_text(
        json.dumps({"source": str(path), "pages": [asdict(r) for r in records]}), encoding="utf-8"
    )
    partial.replace(cache)
    return records, False


def build_corpus(
    folders: Sequence[Path], out_dir: Path, settings: Settings, on_file: Callable[[Path], None] | None = None
) -> tuple[Path, CorpusStats]:
    """OCR (or read from the cache) every image under `folders`; write OUT/pages.jsonl. Files run in
    parallel threads (the OCR worker setting), each page on one tesseract thread."""
    out_dir = Path(out_dir)
    (out_dir / CACHE_DIR).mkdir(parents=True, exist_ok=True)
    files = find_images(folders)
    workers = max(1, min(settings.ocr_workers or os.cpu_count() or 1, len(files) or 1))
    one_thread = settings.model_copy(update={"ocr_workers": 1})

    def work(path: Path) -> tuple[list[PretrainPage], bool] | None:
        result = ocr_file(path, out_dir, one_thread)
        if on_file:
            on_file(path)
        return result

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pretrain-ocr") as pool:
        results = list(pool.map(work, files))
    stats, pages = CorpusStats(files=len(files)), []
    for result in results:
        if result is None:
            stats.skipped += 1
            continue
        pages.extend(result[0])
        stats.cached += int(result[1])
    pages = [p for p in pages if p.words]  # blank pages teach nothing
    stats.pages, stats.words = len(pages), sum(len(p.words) for p in pages)
    return write_pages(pages, out_dir / PAGES_FILE), stats
