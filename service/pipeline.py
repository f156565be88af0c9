"""The extraction pipeline: upload bytes -> pages -> words -> entities -> relations -> `ExtractionResult`.

`extract_document(data, options, settings, runtime)` runs every stage synchronously (the API calls it in a
worker thread; `run_pipeline` also keeps the page images): `service.ingest.load.open_document` (format, page
count and selection, read once), then a few pages at a time their decoding, `service.ingest.ocr.ocr_pages`
for the pages without words, the model runtime and the result. A page whose OCR failed is reported with
`status: failed` and its error; the other pages still succeed. Boxes are integer `[x0, y0, x1, y1]` pixels
of the page image as returned (turned upright when OCR rotated it). Word ids are the words' indices on
their page, in the order OCR, the PDF text layer or the JSON upload gave them.
"""

import hashlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from model.boxes import union_box
from model.runtime import PageWords
from service.errors import DocumentTimeoutError
from service.ingest.load import DocumentSource, open_document
from service.ingest.ocr import ocr_pages
from service.ingest.page import Page
from service.schemas import (
    ExtractedEntity,
    ExtractedRelation,
    ExtractedWord,
    ExtractionResult,
    ExtractOptions,
    KeyValue,
    ModelInfo,
    PageResult,
    StageTimings,
)
from service.settings import Settings

STAGES = ("decode", "ocr", "model", "postprocess")
PAGES_PER_CHUNK = 8  # pages decoded, OCRed and run through the model together
SECTION_LABELS = frozenset({"header"})  # relations touching these are structure, not key-value pairs


class EntityLike(Protocol):
    label: str
    word_ids: Sequence[int]
    confidence: float


class PredictionLike(Protocol):
    entities: Sequence[EntityLike]


class RuntimeLike(Protocol):
    """What the pipeline needs from `model.runtime.Runtime` (its `meta` and `label_set` name the model)."""

    def predict_pages(self, pages: Sequence[PageWords]) -> Sequence[PredictionLike]: ...


@dataclass
class StageClock:
    """Milliseconds per stage, measured with `with clock("ocr"): ...`."""

    started: float = field(default_factory=time.perf_counter)
    spent: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.spent[stage] += (time.perf_counter() - start) * 1000

    def timings(self) -> StageTimings:
        total = (time.perf_counter() - self.started) * 1000
        return StageTimings(**{k: round(v, 1) for k, v in self.spent.items()}, total=round(total, 1))


@dataclass(frozen=True)
class Extraction:
    """The result and the page images its boxes refer to (for overlays), one per result page."""

    result: ExtractionResult
    images: list[Image.Image | None]


def int_box(box: Sequence[float], width: int, height: int) -> list[int]:
    """A pixel box as integers that still hold it (floor / ceil), clamped to the page."""
    x0, y0, x1, y1 = box
    return [
        min(max(math.floor(x0), 0), width),
        min(max(math.floor(y0), 0), height),
        min(max(math.ceil(x1), 0), width),
        min(max(math.ceil(y1), 0), height),
    ]


def unit(value: float) -> float:
    """A confidence clamped to [0, 1] and rounded for JSON."""
    return round(min(max(float(value), 0.0), 1.0), 4)


def effective_settings(settings: Settings, options: ExtractOptions) -> Settings:
    """The settings with the per-document options applied."""
    updates = {"ocr_language": options.ocr_language, "pdf_dpi": options.dpi}
    return settings.model_copy(update={k: v for k, v in updates.items() if v is not None})


def model_info(runtime: Any) -> ModelInfo:
    """The runtime's model id and entity labels.

    The id is the runtime's `model_id` when whoever loaded it set one, else `model-` and a short hash of
    the model's metadata (the same trained model has the same id wherever its folder is).
    """
    model_id = getattr(runtime, "model_id", None)
    if model_id is None:
        metadata = json.dumps(runtime.meta.model, sort_keys=True).encode("utf-8")
        model_id = "model-" + hashlib.sha256(metadata).hexdigest()[:12]
    return ModelInfo(id=str(model_id), labels=list(runtime.label_set.labels))


def check_model(options: ExtractOptions, info: ModelInfo) -> None:
    """The caller picks the runtime for `options.model`; a mismatch is a programming error."""
    if options.model is not None and options.model != info.id:
        raise ValueError(f"options ask for model {options.model!r}, the runtime serves {info.id!r}")


def runtime_input(page: Page) -> PageWords:
    """One page as the runtime reads it: words, pixel boxes, size, image and OCR line ids."""
    words = page.words or []
    line_ids = [w.line_id for w in words]
    return PageWords(
        words=[w.text for w in words],
        boxes_px=[w.box_px for w in words],
        width=page.width,
        height=page.height,
        image=page.image,
        line_ids=line_ids if words and all(i is not None for i in line_ids) else None,
    )


def predict(runtime: RuntimeLike, pages: Sequence[Page]) -> list[PredictionLike | None]:
    """Model predictions for the pages that have words (all in one runtime call); None for the others."""
    todo = [i for i, page in enumerate(pages) if page.error is None and page.words]
    predictions = list(runtime.predict_pages([runtime_input(pages[i]) for i in todo])) if todo else []
    if len(predictions) != len(todo):
        raise RuntimeError(f"the runtime returned {len(predictions)} predictions for {len(todo)} pages")
    by_page: list[PredictionLike | None] = [None] * len(pages)
    for index, prediction in zip(todo, predictions, strict=True):
        by_page[index] = prediction
    return by_page


def page_words(page: Page) -> list[ExtractedWord]:
    return [
        ExtractedWord(
            id=i, text=w.text, box=int_box(w.box_px, page.width, page.height), confidence=unit(w.confidence)
        )
        for i, w in enumerate(page.words or [])
    ]


def page_entities(page: Page, prediction: PredictionLike | None) -> list[ExtractedEntity]:
    """Entities with their text (words joined) and box (union of the words' boxes). An entity's id is its
    index in the prediction, so relations predicted between entities keep pointing at the right ones."""
    words = page.words or []
    entities: list[ExtractedEntity] = []
    for number, entity in enumerate(prediction.entities if prediction is not None else ()):
        ids = [int(i) for i in entity.word_ids]
        box = union_box(words[i].box_px for i in ids)  # ValueError on an entity without words
        entities.append(
            ExtractedEntity(
                id=number,
                label=entity.label,
                text=" ".join(words[i].text for i in ids),
                box=int_box(box, page.width, page.height),
                word_ids=ids,
                confidence=unit(entity.confidence),
            )
        )
    return entities


def predicted_relations(prediction: PredictionLike | None) -> list[ExtractedRelation]:
    """The links the model predicted between a page's entities (head -> tail, entity ids).

    The one place relations enter the result: empty until the runtime's predictions carry `relations`
    (objects with `head`, `tail` and `confidence`, indices into the prediction's entities).
    """
    links = getattr(prediction, "relations", None) or ()
    return [
        ExtractedRelation(head=int(x.head), tail=int(x.tail), confidence=unit(x.confidence)) for x in links
    ]


def page_result(page: Page, prediction: PredictionLike | None) -> PageResult:
    """One page of the result; a page whose OCR failed carries only its size and the error."""
    common = {"page": page.index + 1, "width": page.width, "height": page.height, "rotation": page.rotation}
    if page.error is not None:
        return PageResult(**common, status="failed", error=page.error)
    return PageResult(
        **common,
        words=page_words(page),
        entities=page_entities(page, prediction),
        relations=predicted_relations(prediction),
    )


def key_values(page: PageResult) -> list[KeyValue]:
    """Key-value pairs from a page's relations: head = key, tail = value; links to or from a section
    header are structure and are left out."""
    by_id = {entity.id: entity for entity in page.entities}
    pairs: list[KeyValue] = []
    for relation in page.relations:
        key, value = by_id.get(relation.head), by_id.get(relation.tail)
        if key is None or value is None or {key.label, value.label} & SECTION_LABELS:
            continue
        pairs.append(
            KeyValue(
                page=page.page,
                key=key.text,
                value=value.text,
                key_box=key.box,
                value_box=value.box,
                confidence=relation.confidence,
            )
        )
    return pairs


def check_deadline(clock: StageClock, settings: Settings, pages_done: int) -> None:
    """DocumentTimeoutError when the document has taken longer than `document_timeout_s` so far."""
    spent_s = time.perf_counter() - clock.started
    if spent_s > settings.document_timeout_s:
        raise DocumentTimeoutError(
            f"the document took longer than {settings.document_timeout_s:g} s ({pages_done} pages done in "
            f"{spent_s:.0f} s); select fewer pages"
        )


def pages_per_chunk(source: DocumentSource) -> int:
    """How many pages go through the stages together: `PAGES_PER_CHUNK`, or every page of JSON pages (all
    validated up front; their images are rare)."""
    return len(source.indices) if source.format == "json" else PAGES_PER_CHUNK


def run_chunk(
    source: DocumentSource, chunk: Sequence[int], settings: Settings, runtime: RuntimeLike, clock: StageClock
) -> tuple[list[Page], list[PageResult]]:
    """Pages `chunk` of the source through decode, OCR, model and postprocess: the pages and their results."""
    with clock("decode"):
        pages = source.load(chunk)
    with clock("ocr"):
        pages = ocr_pages(pages, settings)
    with clock("model"):
        predictions = predict(runtime, pages)
    with clock("postprocess"):
        results = [page_result(page, prediction) for page, prediction in zip(pages, predictions, strict=True)]
    return pages, results


def run_pipeline(
    data: bytes, options: ExtractOptions, settings: Settings, runtime: RuntimeLike, keep_images: bool = True
) -> Extraction:
    """Every stage, timed; the result plus (with `keep_images`) the page images for overlays.

    The upload's format, page count and selection are read once (`open_document`); a long PDF or TIFF then
    goes through `PAGES_PER_CHUNK` pages at a time (decode, OCR, model), so that only that many page images
    are in memory at once: 100 colour pages at 300 dpi would otherwise hold 2.5 GB."""
    clock = StageClock()
    info = model_info(runtime)
    check_model(options, info)
    settings = effective_settings(settings, options)
    with clock("decode"):
        source = open_document(data, settings, options.pages)
    results: list[PageResult] = []
    images: list[Image.Image | None] = []
    for chunk in source.chunks(pages_per_chunk(source)):
        check_deadline(clock, settings, len(results))
        pages, chunk_results = run_chunk(source, chunk, settings, runtime, clock)
        results += chunk_results
        images += [page.image if keep_images else None for page in pages]
    with clock("postprocess"):
        pairs = [pair for result in results for pair in key_values(result)]
    result = ExtractionResult(
        document_id=hashlib.sha256(data).hexdigest(),
        model=info,
        pages=results,
        key_values=pairs,
        timings_ms=clock.timings(),
    )
    return Extraction(result, images)


def extract_document(
    data: bytes, options: ExtractOptions, settings: Settings, runtime: RuntimeLike
) -> ExtractionResult:
    """Words, entities, relations and key-value pairs of every selected page of an upload.

    Raises `service.errors.DocumentError` subclasses for uploads that cannot be read; per-page OCR
    failures are reported in the result instead.
    """
    return run_pipeline(data, options, settings, runtime, keep_images=False).result
