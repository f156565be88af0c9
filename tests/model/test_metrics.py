import pytest

from model.metrics import entity_scores


def test_hand_computed_scores():
    gold = [["B-q", "I-q", "O", "B-a", "I-a"], ["B-h", "O"]]
    predicted = [["B-q", "I-q", "O", "B-a", "O"], ["B-h", "B-a"]]
    report = entity_scores(gold, predicted)
    # gold: q(0-2), a(3-5), h(0-1) = 3; predicted: q(0-2), a(3-4), h(0-1), a(1-2) = 4; correct: q, h = 2
    assert report.micro.precision == pytest.approx(2 / 4)
    assert report.micro.recall == pytest.approx(2 / 3)
    assert report.micro.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert report.per_label["q"].f1 == 1.0
    assert report.per_label["a"].precision == 0.0 and report.per_label["a"].support == 1
    assert report.per_label["h"].support == 1


def test_perfect_and_empty_predictions():
    gold = [["B-q", "I-q", "B-a"]]
    assert entity_scores(gold, gold).micro.f1 == 1.0
    assert entity_scores(gold, [["O", "O", "O"]]).micro.f1 == 0.0
    assert entity_scores([["O"]], [["O"]]).micro.f1 == 0.0


def test_a_boundary_error_counts_as_a_miss():
    assert entity_scores([["B-q", "I-q", "I-q"]], [["B-q", "I-q", "O"]]).micro.f1 == 0.0


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        entity_scores([["O"]], [["O", "O"]])
    with pytest.raises(ValueError):
        entity_scores([["O"]], [])
