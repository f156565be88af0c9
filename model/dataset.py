"""FUNSD documents -> model examples: words in the chosen order, boxes at the chosen granularity, BIO tags.
No torch. Input boxes come from word geometry only, never from gold entity boxes."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from model.boxes import group_lines, line_boxes, normalize_box, reading_order
from model.config import LabelSet
from model.funsd import Document
from model.relations import RelationSchema

WordOrder = Literal["annotation", "reading"]
BoxLevel = Literal["word", "line"]


@dataclass(frozen=True)
class PageExample:
    """One page as the model sees it, with its gold tags and the entity each word belongs to."""

    name: str
    image_path: Path | None
    words: list[str]
    boxes: np.ndarray  # [N, 4] int64, 0-1000 grid (word or line boxes)
    tags: np.ndarray  # [N] int64 BIO tag ids
    entity_ids: np.ndarray  # [N] int64 gold entity id of each word
    entity_labels: dict[int, str] = field(default_factory=dict)  # gold label of each entity id
    links: tuple[tuple[int, int], ...] = ()  # gold (from id, to id) links as annotated


def ordered_tags(labels: Sequence[str], entity_ids: Sequence[int], label_set: LabelSet) -> list[int]:
    """BIO tags of words in their final order: B on the first word of each entity met, I on the rest;
    O for `other` and labels outside the set."""
    seen: set[int] = set()
    tags = []
    for label, entity in zip(labels, entity_ids, strict=True):
        tags.append(label_set.inside_tag(label) if entity in seen else label_set.begin_tag(label))
        seen.add(entity)
    return tags


def input_boxes(boxes_px: Sequence[Sequence[float]], box_level: BoxLevel) -> list[Sequence[float]]:
    """Word boxes as they are, or each word's geometric text-line box."""
    if box_level == "word":
        return list(boxes_px)
    return list(line_boxes(boxes_px, group_lines(boxes_px)))


def document_example(
    document: Document, label_set: LabelSet, word_order: WordOrder = "reading", box_level: BoxLevel = "word"
) -> PageExample:
    """Words of a document (empty words dropped, as in the LayoutLM FUNSD protocol) with tags."""
    words: list[str] = []
    boxes_px: list[Sequence[float]] = []
    labels: list[str] = []
    entity_ids: list[int] = []
    for entity in document.entities:
        kept = [w for w in entity.words if w.text.strip()]
        words.extend(w.text for w in kept)
        boxes_px.extend(w.box_px for w in kept)
        labels.extend([entity.label] * len(kept))
        entity_ids.extend([entity.id] * len(kept))
    order = list(range(len(words)))
    if word_order == "reading" and words:
        order = reading_order(boxes_px, group_lines(boxes_px))
    model_boxes = input_boxes(boxes_px, box_level)
    grid = [normalize_box(model_boxes[i], document.width, document.height) for i in order]
    ordered_ids = [entity_ids[i] for i in order]
    return PageExample(
        name=document.name,
        image_path=document.image_path,
        words=[words[i] for i in order],
        boxes=np.asarray(grid, dtype=np.int64).reshape(-1, 4),
        tags=np.asarray(ordered_tags([labels[i] for i in order], ordered_ids, label_set), dtype=np.int64),
        entity_ids=np.asarray(ordered_ids, dtype=np.int64),
        entity_labels={e.id: e.label for e in document.entities},
        links=document.links,
    )


def split_validation(names: Sequence[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of document indices into (train, validation); validation gets at least one document
    when there are two or more."""
    indices = list(range(len(names)))
    if len(indices) < 2 or fraction <= 0:
        return indices, []
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(indices).tolist()
    count = min(len(indices) - 1, max(1, round(fraction * len(indices))))
    return sorted(shuffled[count:]), sorted(shuffled[:count])


def relation_schema(documents: Sequence[Document], label_set: LabelSet) -> RelationSchema | None:
    """Linkable label pairs seen in the data's links (None when the data has no usable links)."""
    labelled = []
    for document in documents:
        labels = {e.id: e.label for e in document.entities}
        labelled.extend((labels[a], labels[b]) for a, b in document.links)
    usable = [(a, b) for a, b in labelled if a in label_set.labels and b in label_set.labels]
    schema = RelationSchema.from_links(usable)
    return schema if schema.pairs else None
