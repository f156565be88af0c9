"""Torch-free inference for serving: pages of OCR words -> per-word BIO tags and entities.

One `onnxruntime.InferenceSession` per `Runtime`, reused for every call. Pages are turned into model input
exactly as in training (`model.dataset.document_example`): words reordered into reading order and boxes
taken at word or line level as the artifact's `inputs` say, normalised to the 0-1000 grid, cut into
overlapping windows. Windows of several pages share session calls (at most `batch_windows` rows each);
window logits are merged per page, decoded into BIO spans and mapped back to the caller's word ids.

The int8 graph quantises activations per tensor at run time, over the whole batch, so int8 results would
depend on what else shares a session call (on FUNSD test, 4% of word tags changed between batched and
alone). So int8 runs one window per session call by default (on 2 CPU cores, batching bought no speed);
fp32 results are the same batched or alone and fp32 batches up to 8 windows.

Work is split in two so that callers (e.g. `service.api.batcher`) can reject one bad request without failing
others: `prepare` validates and encodes pages (raises ValueError on bad input); `run_prepared` runs the model.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from tokenizers import Tokenizer

from model.artifact import TOKENIZER_FILE, InputOptions
from model.boxes import group_lines, line_boxes, normalize_box, reading_order
from model.config import LabelSet
from model.decode import (
    Span,
    best_bio_tags,
    bio_spans,
    log_softmax,
    merge_window_logits,
    span_confidences,
    tags_to_strings,
)
from model.features import (
    SpecialTokens,
    Window,
    collate,
    encode_words,
    load_tokenizer,
    page_pixels,
    vocab_sha256,
)
from model.onnx_meta import ENTITY_LOGITS, RELATION_LOGITS, TEXT_STATES, OnnxMeta, Variant
from model.relation_batch import relation_inputs, span_entity_group
from model.relations import RelationSchema, select_links, sigmoid

DEFAULT_BATCH_WINDOWS: dict[str, int] = {"fp32": 8, "int8": 1}  # int8: see the module docstring


@dataclass(frozen=True)
class PageWords:
    """One page as OCR (or a caller) gives it: words with pixel boxes, in any order."""

    words: Sequence[str]
    boxes_px: Sequence[Sequence[float]]  # (x0, y0, x1, y1) in page pixels, one per word
    width: float
    height: float
    image: Image.Image | None = None
    line_ids: Sequence[int] | None = None  # OCR text-line id per word; None: lines from geometry alone


@dataclass(frozen=True)
class EntityPrediction:
    label: str
    word_ids: tuple[int, ...]  # the caller's word ids, in reading order
    confidence: float  # mean probability of the chosen tags over the entity's words


@dataclass(frozen=True)
class RelationPrediction:
    head: int  # index into PagePrediction.entities (the key)
    tail: int  # index into PagePrediction.entities (the value)
    confidence: float


@dataclass(frozen=True)
class PagePrediction:
    tags: tuple[str, ...]  # 'O' / 'B-label' / 'I-label' per word, in the caller's word order
    scores: tuple[float, ...]  # probability of each word's tag
    entities: tuple[EntityPrediction, ...]
    relations: tuple[RelationPrediction, ...] = ()  # each value has at most one key


@dataclass(frozen=True)
class PreparedPage:
    """A validated page cut into windows: `order[k]` is the caller's id of the k-th word the model reads."""

    order: np.ndarray
    windows: list[Window]
    pixels: np.ndarray
    boxes: np.ndarray  # [N, 4] grid boxes in reading order (for relation geometry)


def validate_page(page: PageWords) -> None:
    """Raise ValueError when the page's words, boxes, line ids or size do not fit together."""
    count = len(page.words)
    boxes = np.asarray(page.boxes_px, dtype=np.float64)
    if boxes.shape != (count, 4) and not (count == 0 and boxes.size == 0):
        raise ValueError(f"{count} words need {count} boxes of 4 numbers, got shape {boxes.shape}")
    if not np.all(np.isfinite(boxes)):
        raise ValueError("word boxes must be finite numbers")
    if not all(isinstance(word, str) for word in page.words):
        raise ValueError("words must be strings")
    if page.line_ids is not None and len(page.line_ids) != count:
        raise ValueError(f"{count} words but {len(page.line_ids)} line ids")
    if not (math.isfinite(page.width) and math.isfinite(page.height) and page.width > 0 and page.height > 0):
        raise ValueError(f"page size must be positive, got {page.width}x{page.height}")


def ocr_line_rows(boxes_px: Sequence[Sequence[float]], line_ids: Sequence[int]) -> list[int]:
    """Reading-row id per word from OCR line ids: each OCR line stays whole, and lines whose boxes overlap
    vertically join one row (as `group_lines` joins words), numbered top to bottom. So a key and its
    value that OCR put in separate lines (or blocks) side by side are read left to right, as in training."""
    lines = sorted(set(line_ids))
    unions = dict(zip(line_ids, line_boxes(boxes_px, line_ids), strict=True))
    rows = dict(zip(lines, group_lines([unions[line] for line in lines]), strict=True))
    return [rows[line] for line in line_ids]


def page_line_ids(page: PageWords) -> list[int]:
    if page.line_ids is not None:
        return ocr_line_rows(page.boxes_px, page.line_ids)
    return group_lines(page.boxes_px)


def model_inputs(page: PageWords, inputs: InputOptions) -> tuple[list[int], np.ndarray]:
    """(reading order as caller word ids, [N, 4] grid boxes in that order), as training builds them."""
    count = len(page.words)
    needs_lines = inputs.word_order == "reading" or inputs.box_level == "line"
    lines = page_line_ids(page) if needs_lines and count else []
    order = reading_order(page.boxes_px, lines) if inputs.word_order == "reading" else list(range(count))
    boxes = line_boxes(page.boxes_px, lines) if inputs.box_level == "line" else page.boxes_px
    grid = [normalize_box(boxes[i], page.width, page.height) for i in order]
    return order, np.asarray(grid, dtype=np.int64).reshape(-1, 4)


def prepare_page(
    page: PageWords, tokenizer: Tokenizer, inputs: InputOptions, image_size: int
) -> PreparedPage:
    """Validate and encode one page; a page without words gets no windows (and no model call)."""
    validate_page(page)
    order, boxes = model_inputs(page, inputs)
    windows = []
    if order:
        words = [page.words[i] for i in order]
        windows = encode_words(tokenizer, words, boxes, None, inputs.max_tokens, inputs.overlap_tokens)
    return PreparedPage(
        np.asarray(order, dtype=np.int64), windows, page_pixels(page.image, image_size), boxes
    )


def window_batches(pages: Sequence[PreparedPage], batch_windows: int) -> list[list[tuple[int, int]]]:
    """(page, window) pairs of all pages, sorted by length (less padding), in chunks of `batch_windows`."""
    items = [(p, w) for p, page in enumerate(pages) for w in range(len(page.windows))]
    items.sort(key=lambda item: len(pages[item[0]].windows[item[1]].input_ids))
    return [items[i : i + batch_windows] for i in range(0, len(items), batch_windows)]


RelationScorer = Callable[[np.ndarray, Sequence[Span], np.ndarray], tuple[RelationPrediction, ...]]


def decode_page(
    page: PreparedPage,
    logits: Sequence[np.ndarray],
    label_set: LabelSet,
    states: Sequence[np.ndarray] | None = None,
    relate: RelationScorer | None = None,
) -> PagePrediction:
    """Merge a page's window logits, decode BIO entities (and, with a relation scorer, the links between
    them) and map everything to the caller's word ids."""
    count = len(page.order)
    if not count:
        return PagePrediction((), (), ())
    index = [w.word_index for w in page.windows]
    merged = merge_window_logits(index, logits, count)
    log_probabilities = log_softmax(merged)
    probabilities = np.exp(log_probabilities)
    tag_ids = best_bio_tags(log_probabilities, label_set)
    tags = tags_to_strings(tag_ids, label_set)
    spans = bio_spans(tags)
    confidences = span_confidences(probabilities, tag_ids, spans)
    original_tags, scores = [""] * count, [0.0] * count
    for position, word in enumerate(page.order.tolist()):
        original_tags[word] = tags[position]
        scores[word] = float(probabilities[position, tag_ids[position]])
    entities = tuple(
        EntityPrediction(span.label, tuple(page.order[span.start : span.end].tolist()), confidence)
        for span, confidence in zip(spans, confidences, strict=True)
    )
    relations: tuple[RelationPrediction, ...] = ()
    if relate is not None and states is not None and spans:
        relations = relate(merge_window_logits(index, states, count), spans, page.boxes)
    return PagePrediction(tuple(original_tags), tuple(scores), entities, relations)


def relation_scorer(
    session: ort.InferenceSession, label_set: LabelSet, schema: RelationSchema, threshold: float
) -> RelationScorer:
    """A RelationScorer over the relation graph: candidates among the predicted entities, their geometry,
    one session call, and link selection (each value keeps at most one key)."""

    def relate(
        word_states: np.ndarray, spans: Sequence[Span], boxes: np.ndarray
    ) -> tuple[RelationPrediction, ...]:
        group = span_entity_group(spans, boxes, label_set)
        inputs = relation_inputs(group, group.first_words, schema, label_set, set())
        if len(inputs.pairs) == 0:
            return ()
        feeds = {
            "entity_states": word_states[group.first_words][None].astype(np.float32),
            "entity_labels": inputs.entity_labels[None],
            "pair_index": inputs.pairs[None],
            "pair_features": inputs.features[None],
        }
        logits = session.run([RELATION_LOGITS], feeds)[0][0]
        links = select_links(inputs.pairs, sigmoid(logits), threshold)
        return tuple(RelationPrediction(x.head, x.tail, x.confidence) for x in links)

    return relate


# Graph fusions that make our graphs slower on CPU: onnxruntime's fused SkipLayerNormalization kernel took
# 1.07 ms where the unfused Add + LayerNormalization took 0.18 ms ([1, 561, 384], 1 thread, ORT 1.32),
# about 9% of the int8 model's time over its 12 layer norms. The results are the same (max abs 8e-6).
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def open_session(path: Path, threads: int = 1, allow_spinning: bool = True) -> ort.InferenceSession:
    """The one way a graph is opened: serving, the parity checks and the latency benchmark alike."""
    return ort.InferenceSession(
        str(path),
        session_options(threads, allow_spinning),
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(DISABLED_OPTIMIZERS),
    )


def session_options(threads: int, allow_spinning: bool = True) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    return options


def checked_tokenizer(model_dir: Path, expected_sha256: str) -> Tokenizer:
    tokenizer = load_tokenizer(Path(model_dir) / TOKENIZER_FILE)
    if vocab_sha256(tokenizer) != expected_sha256:
        raise ValueError(f"{model_dir}: tokenizer vocabulary does not match the model's vocab_sha256")
    return tokenizer


class Runtime:
    """A loaded ONNX serving artifact; thread-safe for concurrent `predict_pages` calls."""

    def __init__(
        self,
        session: ort.InferenceSession,
        meta: OnnxMeta,
        tokenizer: Tokenizer,
        batch_windows: int,
        relate: RelationScorer | None = None,
    ) -> None:
        if batch_windows < 1:
            raise ValueError("batch_windows must be at least 1")
        self.session, self.meta, self.tokenizer = session, meta, tokenizer
        self.artifact = meta.artifact
        self.batch_windows = batch_windows
        self.pad_id = SpecialTokens.of(tokenizer).pad
        self.relate = relate
        self.outputs = [ENTITY_LOGITS, TEXT_STATES] if relate is not None else [ENTITY_LOGITS]

    @classmethod
    def load(
        cls,
        model_dir: Path,
        variant: Variant = "int8",
        threads: int = 2,
        batch_windows: int | None = None,
        allow_spinning: bool = True,
        relation_threshold: float = 0.5,
    ) -> "Runtime":
        """Open the `variant` graph of an exported folder, checking its tokenizer against the metadata.
        `batch_windows` bounds the rows of one session call (default per variant: DEFAULT_BATCH_WINDOWS)."""
        meta = OnnxMeta.load(model_dir)
        tokenizer = checked_tokenizer(model_dir, meta.artifact.vocab_sha256)
        path = Path(model_dir) / meta.variant_file(variant)
        session = open_session(path, threads, allow_spinning)
        relate = None
        schema = meta.artifact.relation_schema
        if meta.relation_file and schema is not None:
            graph = Path(model_dir) / meta.relation_file
            relation_session = open_session(graph, threads, allow_spinning)
            relate = relation_scorer(relation_session, meta.artifact.label_set, schema, relation_threshold)
        return cls(session, meta, tokenizer, batch_windows or DEFAULT_BATCH_WINDOWS[variant], relate)

    @property
    def label_set(self) -> LabelSet:
        return self.artifact.label_set

    def prepare(self, pages: Sequence[PageWords]) -> list[PreparedPage]:
        """Validate and encode pages; ValueError names the first bad page."""
        prepared = []
        for index, page in enumerate(pages):
            try:
                prepared.append(
                    prepare_page(page, self.tokenizer, self.artifact.inputs, self.artifact.config.image_size)
                )
            except (ValueError, TypeError) as exc:
                raise ValueError(f"page {index}: {exc}") from exc
        return prepared

    def run_prepared(self, pages: Sequence[PreparedPage]) -> list[PagePrediction]:
        """Run the model over every window of `pages` in bounded batches and decode each page."""
        outputs: dict[tuple[int, int], list[np.ndarray]] = {}
        for batch in window_batches(pages, self.batch_windows):
            windows = [pages[p].windows[w] for p, w in batch]
            arrays = collate(windows, [pages[p].pixels for p, _ in batch], self.pad_id)
            results = self.session.run(self.outputs, arrays)
            for row, (item, window) in enumerate(zip(batch, windows, strict=True)):
                outputs[item] = [result[row, : len(window.input_ids)] for result in results]
        predictions = []
        for p, page in enumerate(pages):
            per_window = [outputs[(p, w)] for w in range(len(page.windows))]
            logits = [o[0] for o in per_window]
            states = [o[1] for o in per_window] if self.relate is not None else None
            predictions.append(decode_page(page, logits, self.label_set, states, self.relate))
        return predictions

    def predict_pages(self, pages: Sequence[PageWords]) -> list[PagePrediction]:
        return self.run_prepared(self.prepare(pages))
