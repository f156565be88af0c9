"""Model outputs -> words' tags -> entities. Pure numpy; used by evaluation and the serving runtime."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.config import OUTSIDE, LabelSet


def merge_window_logits(
    word_indices: Sequence[np.ndarray], logits: Sequence[np.ndarray], num_words: int
) -> np.ndarray:
    """Per-word logits [num_words, T] from overlapping windows.

    `word_indices[k]` maps window k's tokens to words (-1 for none); `logits[k]` is [L_k, T]. A word seen by
    several windows keeps the logits of the window where it sits furthest from an edge (most context).
    """
    if not logits:
        return np.zeros((num_words, 0), dtype=np.float32)
    merged = np.zeros((num_words, logits[0].shape[-1]), dtype=np.float32)
    best_context = np.full(num_words, -1, dtype=np.int64)
    for index, window_logits in zip(word_indices, logits, strict=True):
        positions = np.flatnonzero(index >= 0)
        if positions.size == 0:
            continue
        words = index[positions]
        context = np.minimum(words - words.min(), words.max() - words)
        better = context > best_context[words]
        merged[words[better]] = window_logits[positions[better]]
        best_context[words[better]] = context[better]
    missing = np.flatnonzero(best_context < 0)
    if missing.size:
        raise ValueError(f"words {missing[:10].tolist()} are in no window")
    return merged


def bio_transitions(label_set: LabelSet) -> tuple[np.ndarray, np.ndarray]:
    """(allowed [T, T] previous -> next, allowed first tags [T]) of valid BIO sequences: I-x only continues
    B-x or I-x, and a sequence never opens with an I- tag."""
    num_tags = label_set.num_tags
    allowed = np.ones((num_tags, num_tags), dtype=bool)
    first = np.ones(num_tags, dtype=bool)
    for label in label_set.labels:
        begin, inside = label_set.begin_tag(label), label_set.inside_tag(label)
        allowed[:, inside] = False
        allowed[[begin, inside], inside] = True
        first[inside] = False
    return allowed, first


def best_bio_tags(log_probabilities: np.ndarray, label_set: LabelSet) -> np.ndarray:
    """The valid BIO tag sequence with the highest summed log-probability (Viterbi over per-word
    [N, T] log-probabilities). Per-word argmax can leave an I- tag after O or after another label, which
    splits or truncates entities; this never does, and equals the argmax wherever that is valid."""
    count = len(log_probabilities)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    allowed, first = bio_transitions(label_set)
    transition = np.where(allowed, 0.0, -np.inf)
    score = np.where(first, log_probabilities[0], -np.inf)
    backpointers = np.zeros((count, label_set.num_tags), dtype=np.int64)
    for position in range(1, count):
        candidates = score[:, None] + transition  # [previous, next]
        backpointers[position] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probabilities[position]
    path = np.zeros(count, dtype=np.int64)
    path[-1] = int(score.argmax())
    for position in range(count - 1, 0, -1):
        path[position - 1] = backpointers[position, path[position]]
    return path


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def tags_to_strings(tag_ids: Sequence[int], label_set: LabelSet) -> list[str]:
    """Tag ids -> 'O' / 'B-label' / 'I-label'."""
    tags = label_set.tags
    return [tags[int(t)] for t in tag_ids]


@dataclass(frozen=True)
class Span:
    label: str
    start: int  # first word
    end: int  # one past the last word


def bio_spans(tags: Sequence[str]) -> list[Span]:
    """Entity spans from BIO tags, the way seqeval reads them: an I- tag after O or after another label
    starts a new entity; B- always starts one."""
    spans: list[Span] = []
    label: str | None = None
    start = 0
    for position, tag in enumerate([*tags, OUTSIDE]):
        prefix, _, tag_label = tag.partition("-")
        continues = prefix == "I" and tag_label == label
        if label is not None and not continues:
            spans.append(Span(label, start, position))
            label = None
        if prefix in ("B", "I") and not continues:
            label, start = tag_label, position
    return spans


def span_confidences(probabilities: np.ndarray, tag_ids: np.ndarray, spans: Sequence[Span]) -> list[float]:
    """Mean probability of the chosen tag over each span's words."""
    chosen = probabilities[np.arange(len(tag_ids)), tag_ids] if len(tag_ids) else np.zeros(0)
    return [float(chosen[s.start : s.end].mean()) for s in spans]


def softmax(logits: np.ndarray) -> np.ndarray:
    return np.exp(log_softmax(logits))
