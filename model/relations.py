"""Relations between entities (key -> value links): schema, candidate pairs, pair geometry, link selection.
Pure numpy; pair construction and selection happen outside the exported graph.

Candidates are all (head, tail) entity pairs whose labels form a schema pair, e.g. (question, answer), in
either reading order: a value left of or above its key is still a candidate.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

GEOMETRY_FEATURES = 14
GRID = 1000.0


@dataclass(frozen=True)
class RelationSchema:
    """Directed label pairs (head label, tail label) that can be linked, e.g. ("question", "answer")."""

    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def from_links(
        cls, labelled_links: Iterable[tuple[str, str]], min_share: float = 0.05
    ) -> "RelationSchema":
        """Label pairs seen in training links, each in its more frequent direction, keeping those with at
        least `min_share` of all links (drops rare annotation noise)."""
        directed = Counter(labelled_links)
        merged: Counter[tuple[str, str]] = Counter()
        for (a, b), count in directed.items():
            forward = directed[(a, b)] >= directed[(b, a)] if a != b else True
            merged[(a, b) if forward else (b, a)] += count
        total = sum(merged.values())
        kept = sorted(pair for pair, count in merged.items() if total and count / total >= min_share)
        return cls(tuple(kept))

    def orient(self, label_a: str, label_b: str) -> bool | None:
        """True when (a, b) is a schema pair, False when (b, a) is, None when neither."""
        if (label_a, label_b) in self.pairs:
            return True
        if (label_b, label_a) in self.pairs:
            return False
        return None

    def to_list(self) -> list[list[str]]:
        return [list(p) for p in self.pairs]

    @classmethod
    def from_list(cls, data: Sequence[Sequence[str]]) -> "RelationSchema":
        return cls(tuple((str(h), str(t)) for h, t in data))


def candidate_pairs(labels: Sequence[str], schema: RelationSchema) -> np.ndarray:
    """[P, 2] (head, tail) indices of all entity pairs whose labels form a schema pair, any order."""
    pairs = [
        (head, tail)
        for head, head_label in enumerate(labels)
        for tail, tail_label in enumerate(labels)
        if head != tail and (head_label, tail_label) in schema.pairs
    ]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def pair_geometry(boxes: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """[P, GEOMETRY_FEATURES] float32 geometry of each (head, tail) pair from 0-1000 grid boxes:
    centre offsets and distance, edge gaps both ways, alignment of tops and lefts, overlap ratios, and
    whether the tail is left of / above the head."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    if len(pairs) == 0:
        return np.zeros((0, GEOMETRY_FEATURES), dtype=np.float32)
    h, t = boxes[pairs[:, 0]], boxes[pairs[:, 1]]
    hc, tc = (h[:, :2] + h[:, 2:]) / 2, (t[:, :2] + t[:, 2:]) / 2
    offset = (tc - hc) / GRID
    size_h, size_t = np.maximum(h[:, 2:] - h[:, :2], 1.0), np.maximum(t[:, 2:] - t[:, :2], 1.0)
    overlap = np.minimum(h[:, 2:], t[:, 2:]) - np.maximum(h[:, :2], t[:, :2])
    overlap_ratio = np.clip(overlap / np.minimum(size_h, size_t), -1.0, 1.0)
    features = [
        offset[:, 0], offset[:, 1], np.hypot(offset[:, 0], offset[:, 1]),
        (t[:, 0] - h[:, 2]) / GRID, (t[:, 1] - h[:, 3]) / GRID,  # tail after head: gap right, gap below
        (h[:, 0] - t[:, 2]) / GRID, (h[:, 1] - t[:, 3]) / GRID,  # tail before head: gap left, gap above
        np.abs(t[:, 1] - h[:, 1]) / GRID, np.abs(t[:, 0] - h[:, 0]) / GRID,
        overlap_ratio[:, 0], overlap_ratio[:, 1],
        (tc[:, 0] < hc[:, 0]).astype(np.float32), (tc[:, 1] < hc[:, 1]).astype(np.float32),
        np.log(size_t[:, 0] / size_h[:, 0]) / 4,
    ]  # fmt: skip
    return np.stack(features, axis=1).astype(np.float32)


@dataclass(frozen=True)
class Link:
    head: int
    tail: int
    confidence: float


def select_links(pairs: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> list[Link]:
    """Each tail keeps at most one head: its most probable one, if at or above `threshold`. A head may keep
    several tails. Sorted by (head, tail)."""
    best: dict[int, tuple[float, int]] = {}
    for (head, tail), probability in zip(pairs.tolist(), probabilities.tolist(), strict=True):
        if probability >= threshold and probability > best.get(tail, (-1.0, -1))[0]:
            best[tail] = (probability, head)
    return sorted((Link(head, tail, p) for tail, (p, head) in best.items()), key=lambda x: (x.head, x.tail))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))
