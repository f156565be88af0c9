import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from model.relations import (
    GEOMETRY_FEATURES,
    RelationSchema,
    candidate_pairs,
    pair_geometry,
    select_links,
    sigmoid,
)

QA = RelationSchema((("question", "answer"),))


def test_schema_from_links_keeps_frequent_pairs_in_their_main_direction():
    links = [("question", "answer")] * 40 + [("answer", "question")] * 3 + [("header", "question")] * 10
    links += [("other", "answer")]
    schema = RelationSchema.from_links(links)
    assert schema.pairs == (("header", "question"), ("question", "answer"))
    assert schema.orient("answer", "question") is False and schema.orient("other", "answer") is None
    assert RelationSchema.from_list(schema.to_list()) == schema


def test_candidates_come_in_either_reading_order():
    # the answer (index 0) comes before its question (index 2) in reading order: still a candidate
    labels = ["answer", "header", "question", "answer"]
    pairs = candidate_pairs(labels, QA)
    assert pairs.tolist() == [[2, 0], [2, 3]]
    assert candidate_pairs([], QA).shape == (0, 2)


def test_geometry_knows_left_and_above():
    boxes = np.array([[500, 500, 600, 520], [100, 500, 200, 520], [500, 100, 600, 120], [650, 500, 800, 520]])
    features = pair_geometry(boxes, np.array([[0, 1], [0, 2], [0, 3]]))
    assert features.shape == (3, GEOMETRY_FEATURES) and features.dtype == np.float32
    tail_left, tail_above = features[:, 11], features[:, 12]
    assert tail_left.tolist() == [1.0, 0.0, 0.0] and tail_above.tolist() == [0.0, 1.0, 0.0]
    assert features[2, 3] > 0  # gap to the right of the head
    assert np.all(np.isfinite(features))


probability = st.floats(0, 1, allow_nan=False)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), probability), max_size=30), probability)
def test_selection_never_gives_one_answer_two_questions(rows, threshold):
    pairs = np.array([[h, t] for h, t, _ in rows], dtype=np.int64).reshape(-1, 2)
    probabilities = np.array([p for _, _, p in rows], dtype=np.float64)
    links = select_links(pairs, probabilities, threshold)
    tails = [link.tail for link in links]
    assert len(tails) == len(set(tails))
    assert all(link.confidence >= threshold for link in links)
    for link in links:  # each kept link is the tail's best candidate
        best = max(p for (h, t, p) in rows if t == link.tail)
        assert link.confidence == best


def test_a_question_may_keep_several_answers():
    links = select_links(np.array([[0, 1], [0, 2], [3, 2]]), np.array([0.9, 0.8, 0.6]))
    assert [(x.head, x.tail) for x in links] == [(0, 1), (0, 2)]


def test_sigmoid_is_stable():
    assert np.allclose(sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0.0, 0.5, 1.0])
