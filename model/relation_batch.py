"""Relation training inputs per window, and page-level relation inputs at inference. Pure numpy.

Training uses gold entities: an entity belongs to the window holding its first word (in the chosen word
order); its state is read at that word's first sub-token. Candidates are the schema pairs among the
window's entities; a candidate's target is 1 when the annotation links the two entities.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.boxes import union_box
from model.config import LabelSet
from model.dataset import PageExample
from model.decode import Span
from model.features import Window
from model.relations import GEOMETRY_FEATURES, RelationSchema, candidate_pairs, pair_geometry

PAD_TARGET = -1.0


@dataclass(frozen=True)
class EntityGroup:
    """Entities of one page (or window) as the relation head sees them."""

    ids: list[int]  # entity ids (gold ids in training, decode ids at inference)
    first_words: np.ndarray  # [E] index of each entity's first word
    labels: np.ndarray  # [E] label index in the LabelSet
    boxes: np.ndarray  # [E, 4] grid boxes (union of the entity's word boxes)


@dataclass(frozen=True)
class RelationInputs:
    """Inputs of the relation head for one sequence, with targets when known."""

    entity_positions: np.ndarray  # [E] token (training) or word (inference) positions
    entity_labels: np.ndarray  # [E]
    pairs: np.ndarray  # [P, 2]
    features: np.ndarray  # [P, F]
    targets: np.ndarray  # [P] 1.0 linked, 0.0 not
    entity_ids: list[int]


def oriented_links(example: PageExample, schema: RelationSchema) -> set[tuple[int, int]]:
    """Gold links as (head id, tail id) in the schema's direction; links outside the schema dropped."""
    links = set()
    for a, b in example.links:
        forward = schema.orient(example.entity_labels.get(a, ""), example.entity_labels.get(b, ""))
        if forward is not None:
            links.add((a, b) if forward else (b, a))
    return links


def gold_entities(example: PageExample, label_set: LabelSet) -> EntityGroup:
    """Labelled gold entities of a page in the order their first words appear."""
    ids: list[int] = []
    first_words: list[int] = []
    for word, entity in enumerate(example.entity_ids.tolist()):
        if entity not in ids and example.entity_labels.get(entity) in label_set.labels:
            ids.append(entity)
            first_words.append(word)
    return entity_group(ids, first_words, [example.entity_labels[i] for i in ids], example, label_set)


def entity_group(
    ids: list[int], first_words: list[int], labels: Sequence[str], example: PageExample, label_set: LabelSet
) -> EntityGroup:
    boxes = [union_box(example.boxes[example.entity_ids == i]) for i in ids]
    return EntityGroup(
        ids=ids,
        first_words=np.asarray(first_words, dtype=np.int64),
        labels=np.asarray([label_set.labels.index(label) for label in labels], dtype=np.int64),
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
    )


def span_entity_group(spans: Sequence[Span], boxes: np.ndarray, label_set: LabelSet) -> EntityGroup:
    """Predicted entities (ids = span index) over words with grid `boxes`, as a relation-head group."""
    return EntityGroup(
        ids=list(range(len(spans))),
        first_words=np.asarray([s.start for s in spans], dtype=np.int64),
        labels=np.asarray([label_set.labels.index(s.label) for s in spans], dtype=np.int64),
        boxes=np.asarray([union_box(boxes[s.start : s.end]) for s in spans], dtype=np.float32).reshape(-1, 4),
    )


def relation_inputs(
    group: EntityGroup,
    positions: np.ndarray,
    schema: RelationSchema,
    label_set: LabelSet,
    gold: set[tuple[int, int]],
) -> RelationInputs:
    """Candidates among `group` with the given state positions, geometry and targets."""
    labels = [label_set.labels[i] for i in group.labels.tolist()]
    pairs = candidate_pairs(labels, schema)
    targets = [1.0 if (group.ids[h], group.ids[t]) in gold else 0.0 for h, t in pairs.tolist()]
    return RelationInputs(
        entity_positions=np.asarray(positions, dtype=np.int64),
        entity_labels=group.labels,
        pairs=pairs,
        features=pair_geometry(group.boxes, pairs),
        targets=np.asarray(targets, dtype=np.float32),
        entity_ids=group.ids,
    )


def window_relations(
    window: Window, example: PageExample, schema: RelationSchema, label_set: LabelSet
) -> RelationInputs:
    """Training inputs of one window: the gold entities whose first word it holds."""
    group = gold_entities(example, label_set)
    inside = [k for k, w in enumerate(group.first_words.tolist()) if window.first_word <= w < window.end_word]
    token_of_word = {int(w): p for p, w in enumerate(window.word_index.tolist()) if w >= 0}
    sub = EntityGroup(
        ids=[group.ids[k] for k in inside],
        first_words=group.first_words[inside],
        labels=group.labels[inside],
        boxes=group.boxes[inside],
    )
    positions = np.asarray([token_of_word[int(w)] for w in sub.first_words.tolist()], dtype=np.int64)
    return relation_inputs(sub, positions, schema, label_set, oriented_links(example, schema))


def collate_relations(items: Sequence[RelationInputs]) -> dict[str, np.ndarray]:
    """Pad entities and pairs across a batch (at least one slot each; padded pairs get PAD_TARGET)."""
    entities = max(1, *(len(i.entity_labels) for i in items))
    pairs = max(1, *(len(i.pairs) for i in items))
    batch = len(items)
    out = {
        "entity_positions": np.zeros((batch, entities), dtype=np.int64),
        "entity_labels": np.zeros((batch, entities), dtype=np.int64),
        "pair_index": np.zeros((batch, pairs, 2), dtype=np.int64),
        "pair_features": np.zeros((batch, pairs, GEOMETRY_FEATURES), dtype=np.float32),
        "pair_targets": np.full((batch, pairs), PAD_TARGET, dtype=np.float32),
    }
    for row, item in enumerate(items):
        e, p = len(item.entity_labels), len(item.pairs)
        out["entity_positions"][row, :e] = item.entity_positions
        out["entity_labels"][row, :e] = item.entity_labels
        out["pair_index"][row, :p] = item.pairs
        out["pair_features"][row, :p] = item.features
        out["pair_targets"][row, :p] = item.targets
    return out
