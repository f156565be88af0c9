"""Torch inference over examples; entity and relation evaluation (`docextract evaluate`)."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer
from torch import nn

from model.artifact import TOKENIZER_FILE, ArtifactMeta, InputOptions
from model.config import LabelSet
from model.dataset import PageExample, document_example
from model.decode import Span, best_bio_tags, bio_spans, log_softmax, merge_window_logits, tags_to_strings
from model.features import SpecialTokens, Window, collate, encode_words, load_tokenizer, page_pixels
from model.funsd import Document, read_dataset
from model.metrics import EntityReport, Scores, entity_scores, scores
from model.nn.network import EntityTagger, device_for
from model.relation_batch import (
    EntityGroup,
    RelationInputs,
    gold_entities,
    oriented_links,
    relation_inputs,
    span_entity_group,
    window_relations,
)
from model.relations import RelationSchema, select_links, sigmoid
from model.train.checkpoint import load_model


@dataclass(frozen=True)
class EncodedPage:
    """An example cut into windows, with its page pixels (computed once) and, for models with a relation
    head, each window's relation training inputs."""

    example: PageExample
    windows: list[Window]
    pixels: np.ndarray
    relations: list[RelationInputs] | None = None


PixelCache = dict[tuple[int, int], np.ndarray]  # (device, inode) of the image file -> its pixels


def encode_page(
    example: PageExample,
    tokenizer: Tokenizer,
    inputs: InputOptions,
    image_size: int,
    relations: tuple[RelationSchema, LabelSet] | None = None,
    pixel_cache: PixelCache | None = None,
) -> EncodedPage:
    words, boxes, tags = example.words, example.boxes, example.tags
    windows = encode_words(tokenizer, words, boxes, tags, inputs.max_tokens, inputs.overlap_tokens)
    window_inputs = None
    if relations is not None:
        window_inputs = [window_relations(w, example, *relations) for w in windows]
    pixels = image_pixels(example.image_path, image_size, pixel_cache)
    return EncodedPage(example, windows, pixels, window_inputs)


def image_pixels(path: Path | None, image_size: int, cache: PixelCache | None = None) -> np.ndarray:
    """The page image as model pixels; with a `cache`, pages that share an image file (recombined pages, also
    through hard links as `docextract recombine` writes them) share one read-only array."""
    key = None
    if cache is not None and path is not None:
        stat = path.stat()
        key = (stat.st_dev, stat.st_ino)
        if key in cache:
            return cache[key]
    image = None
    if path is not None:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    pixels = page_pixels(image, image_size)
    if cache is not None and key is not None:
        pixels.flags.writeable = False
        cache[key] = pixels
    return pixels


def as_tensors(arrays: dict[str, np.ndarray], device: torch.device | None = None) -> dict[str, torch.Tensor]:
    """numpy arrays as tensors, on `device` when given (a GPU's; the CPU's shares the arrays' memory)."""
    return {name: torch.from_numpy(array).to(device) for name, array in arrays.items()}


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def predict_words(
    model: EntityTagger, page: EncodedPage, pad_id: int, batch_size: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Per-word logits [N, T] and encoder states [N, H] for one page, windows merged."""
    model.eval()
    logits: list[np.ndarray] = []
    states: list[np.ndarray] = []
    for start in range(0, len(page.windows), batch_size):
        chunk = page.windows[start : start + batch_size]
        batch = as_tensors(collate(chunk, [page.pixels] * len(chunk), pad_id), model_device(model))
        chunk_states, chunk_logits = (t.float().cpu().numpy() for t in model.states_and_logits(**batch))
        for row, window in enumerate(chunk):
            logits.append(chunk_logits[row, : len(window.input_ids)])
            states.append(chunk_states[row, : len(window.input_ids)])
    index = [w.word_index for w in page.windows]
    count = len(page.example.words)
    return merge_window_logits(index, logits, count), merge_window_logits(index, states, count)


def predict_word_logits(
    model: EntityTagger, page: EncodedPage, pad_id: int, batch_size: int = 8
) -> np.ndarray:
    """Per-word logits [N, T] for one page, windows merged."""
    return predict_words(model, page, pad_id, batch_size)[0]


@dataclass(frozen=True)
class EvaluationReport:
    """Entity scores, and relation scores with gold entities and end to end (models with a relation head)."""

    entities: EntityReport
    relations_gold_entities: Scores | None = None
    relations_end_to_end: Scores | None = None

    def to_dict(self) -> dict[str, object]:
        relations = None
        if self.relations_gold_entities is not None and self.relations_end_to_end is not None:
            relations = {
                "gold_entities": self.relations_gold_entities.to_dict(),
                "end_to_end": self.relations_end_to_end.to_dict(),
            }
        return {"entities": self.entities.to_dict(), "relations": relations}


@torch.no_grad()
def link_probabilities(
    model: EntityTagger, word_states: np.ndarray, group: EntityGroup, meta: ArtifactMeta
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs among the group's entities and their link probabilities."""
    assert model.relation_head is not None and meta.relation_schema is not None
    inputs = relation_inputs(group, group.first_words, meta.relation_schema, meta.label_set, set())
    if len(inputs.pairs) == 0:
        return inputs.pairs, np.zeros(0, dtype=np.float32)
    tensors = [word_states[group.first_words], inputs.entity_labels, inputs.pairs, inputs.features]
    device = model_device(model)
    batch = (torch.from_numpy(np.ascontiguousarray(t))[None].to(device) for t in tensors)
    logits = model.relation_head(*batch)
    return inputs.pairs, sigmoid(logits[0].cpu().numpy())


def spans_to_gold(spans: Sequence[Span], example: PageExample) -> dict[int, int]:
    """Span index -> gold entity id, for spans that are exactly one gold entity with its label."""
    matched = {}
    for index, span in enumerate(spans):
        ids = set(example.entity_ids[span.start : span.end].tolist())
        if len(ids) != 1:
            continue
        (entity,) = ids
        whole = int((example.entity_ids == entity).sum()) == span.end - span.start
        if whole and example.entity_labels.get(entity) == span.label:
            matched[index] = entity
    return matched


def page_links(
    model: EntityTagger, states: np.ndarray, group: EntityGroup, meta: ArtifactMeta, threshold: float
) -> set[tuple[int, int]]:
    """Selected links of a page as (head id, tail id) in the group's ids."""
    pairs, probabilities = link_probabilities(model, states, group, meta)
    return {(group.ids[x.head], group.ids[x.tail]) for x in select_links(pairs, probabilities, threshold)}


def evaluate_pages(
    model: EntityTagger, pages: Sequence[EncodedPage], meta: ArtifactMeta, pad_id: int, threshold: float = 0.5
) -> EvaluationReport:
    """Entity scores (seqeval-style exact spans over words) and, with a relation head, relation scores."""
    gold_tags, predicted_tags = [], []
    counts = {"gold": [0, 0, 0], "e2e": [0, 0, 0]}  # correct, predicted, gold
    relations = model.relation_head is not None and meta.relation_schema is not None
    for page in pages:
        example = page.example
        logits, states = predict_words(model, page, pad_id) if example.words else (np.zeros((0, 1)), None)
        tags = tags_to_strings(best_bio_tags(log_softmax(logits), meta.label_set), meta.label_set)
        gold_tags.append(tags_to_strings(example.tags, meta.label_set))
        predicted_tags.append(tags)
        if relations and states is not None:
            gold = oriented_links(example, meta.relation_schema)  # type: ignore[arg-type]
            predicted = page_links(model, states, gold_entities(example, meta.label_set), meta, threshold)
            spans = [s for s in bio_spans(tags) if s.label in meta.label_set.labels]
            to_gold = spans_to_gold(spans, example)
            e2e = page_links(
                model, states, span_entity_group(spans, example.boxes, meta.label_set), meta, threshold
            )
            e2e_gold_ids = {(to_gold.get(h, -1 - h), to_gold.get(t, -1 - t)) for h, t in e2e}
            for key, found in (("gold", predicted), ("e2e", e2e_gold_ids)):
                counts[key][0] += len(found & gold)
                counts[key][1] += len(found)
                counts[key][2] += len(gold)
    entities = entity_scores(gold_tags, predicted_tags)
    if not relations:
        return EvaluationReport(entities)
    return EvaluationReport(entities, scores(*counts["gold"]), scores(*counts["e2e"]))


def evaluate_model_dir(
    model_dir: Path, data_dir: Path, word_order: str | None = None, threshold: float = 0.5
) -> EvaluationReport:
    """Load a saved model and score it on a FUNSD-format folder with the model's own input options
    (or another word order, e.g. 'annotation' for the papers' protocol)."""
    return evaluate_model_on(model_dir, read_dataset(data_dir), word_order, threshold)


def evaluate_model_on(
    model_dir: Path, documents: Sequence[Document], word_order: str | None = None, threshold: float = 0.5
) -> EvaluationReport:
    """Load a saved model and score it on labelled documents (see `evaluate_model_dir`)."""
    model, meta = load_model(model_dir)
    model.to(device_for(0))  # a GPU where there is one
    tokenizer = load_tokenizer(Path(model_dir) / TOKENIZER_FILE)
    order = word_order or meta.inputs.word_order
    examples = [document_example(d, meta.label_set, order, meta.inputs.box_level) for d in documents]  # type: ignore[arg-type]
    pages = [encode_page(e, tokenizer, meta.inputs, meta.config.image_size) for e in examples]
    return evaluate_pages(model, pages, meta, SpecialTokens.of(tokenizer).pad, threshold)
