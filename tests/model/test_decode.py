import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from model.config import LabelSet
from model.decode import (
    Span,
    best_bio_tags,
    bio_spans,
    log_softmax,
    merge_window_logits,
    softmax,
    span_confidences,
    tags_to_strings,
)

tag = st.sampled_from(["O", "B-question", "I-question", "B-answer", "I-answer"])


def test_bio_spans_hand_cases():
    assert bio_spans(["B-q", "I-q", "O", "B-a"]) == [Span("q", 0, 2), Span("a", 3, 4)]
    assert bio_spans(["I-q", "I-q"]) == [Span("q", 0, 2)]  # I after O starts an entity (seqeval)
    assert bio_spans(["B-q", "I-a", "I-a"]) == [Span("q", 0, 1), Span("a", 1, 3)]
    assert bio_spans(["B-q", "B-q"]) == [Span("q", 0, 1), Span("q", 1, 2)]
    assert bio_spans([]) == []


@given(st.lists(tag, max_size=40))
def test_spans_are_disjoint_ordered_and_cover_every_non_o_tag(tags):
    spans = bio_spans(tags)
    covered = [i for s in spans for i in range(s.start, s.end)]
    assert covered == sorted(set(covered))
    assert covered == [i for i, t in enumerate(tags) if t != "O"]
    for span in spans:
        assert all(t.endswith(span.label) for t in tags[span.start : span.end])


def test_merge_prefers_the_window_with_most_context():
    # words 0..5; window A covers 0-3, window B covers 2-5
    a_index, b_index = np.array([-1, 0, 1, 2, 3, -1]), np.array([-1, 2, 3, 4, 5, -1])
    a_logits = np.full((6, 2), 1.0, np.float32)
    b_logits = np.full((6, 2), 2.0, np.float32)
    merged = merge_window_logits([a_index, b_index], [a_logits, b_logits], 6)
    # word 2 is an edge... of B and interior of A: A wins; word 3 is interior of B: B wins
    assert merged[:, 0].tolist() == [1, 1, 1, 2, 2, 2]


def test_merge_reports_words_in_no_window():
    with pytest.raises(ValueError, match="in no window"):
        merge_window_logits([np.array([-1, 0, -1])], [np.zeros((3, 2))], 2)


def test_tag_strings_and_confidences():
    labels = LabelSet(("answer", "question"))
    assert tags_to_strings([0, 1, 2, 3, 4], labels) == [
        "O",
        "B-answer",
        "I-answer",
        "B-question",
        "I-question",
    ]
    probabilities = softmax(np.array([[0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]))
    assert np.allclose(probabilities.sum(-1), 1)
    (confidence,) = span_confidences(probabilities, np.array([1, 2]), [Span("answer", 0, 2)])
    assert 0.98 < confidence < 1.0


LABELS = LabelSet(("answer", "question"))  # tags: O, B-answer, I-answer, B-question, I-question


def is_valid_bio(tags: list[str]) -> bool:
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


def log_probabilities(words: int) -> st.SearchStrategy[np.ndarray]:
    logits = arrays(np.float64, (words, LABELS.num_tags), elements=st.floats(-8, 8))
    return logits.map(log_softmax)


def test_best_bio_tags_repairs_an_orphan_inside_tag():
    # argmax: B-question O I-question -> two entities; the best valid sequence keeps one
    logits = np.log(
        np.array([[0.1, 0.0, 0.0, 0.9, 0.0], [0.45, 0.0, 0.0, 0.0, 0.40], [0.2, 0.0, 0.0, 0.0, 0.8]]) + 1e-9
    )
    assert tags_to_strings(logits.argmax(-1), LABELS) == ["B-question", "O", "I-question"]
    assert tags_to_strings(best_bio_tags(logits, LABELS), LABELS) == [
        "B-question",
        "I-question",
        "I-question",
    ]
    assert best_bio_tags(np.zeros((0, LABELS.num_tags)), LABELS).shape == (0,)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30).flatmap(log_probabilities))
def test_best_bio_tags_are_valid_and_keep_a_valid_argmax(scores):
    best = best_bio_tags(scores, LABELS)
    tags = tags_to_strings(best, LABELS)
    assert is_valid_bio(tags)
    argmax = tags_to_strings(scores.argmax(-1), LABELS)
    if is_valid_bio(argmax):
        rows = np.arange(len(scores))
        assert np.isclose(scores[rows, best].sum(), scores[rows, scores.argmax(-1)].sum())
        runner_up, top = np.sort(scores, axis=-1)[:, -2:].T
        if (top - runner_up > 1e-9).all():  # otherwise a tie (up to rounding) may go either way
            assert tags == argmax


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5).flatmap(log_probabilities))
def test_best_bio_tags_score_the_most_of_every_valid_sequence(scores):
    """Brute force over all 5^n sequences: no valid one scores higher than the Viterbi path."""
    rows = np.arange(len(scores))
    best = scores[rows, best_bio_tags(scores, LABELS)].sum()
    for sequence in itertools.product(range(LABELS.num_tags), repeat=len(scores)):
        if is_valid_bio(tags_to_strings(sequence, LABELS)):
            assert scores[rows, list(sequence)].sum() <= best + 1e-9
