import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from model.train.weight_average import WeightAverage, warmed_decay


@given(st.floats(0.5, 0.9999), st.integers(1, 100_000))
def test_warmed_decay_starts_low_and_never_exceeds_the_decay(decay: float, updates: int):
    value = warmed_decay(decay, updates)
    assert 0.0 < value <= decay
    assert warmed_decay(decay, updates + 1) >= value


def test_the_average_follows_the_formula_and_leaves_integer_buffers_alone():
    model = nn.BatchNorm1d(3)  # weight, bias, running stats (float) and num_batches_tracked (int)
    average = WeightAverage(model, decay=0.5)
    assert "num_batches_tracked" not in average.average
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    average.update(model)  # first update: decay min(0.5, 2/11)
    weight = 1 - 2 / 11
    torch.testing.assert_close(average.average["weight"], start + weight)


def test_applied_swaps_the_average_in_and_restores_the_trained_weights():
    model = nn.Linear(2, 2)
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.mul_(3.0)
    trained = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    with average.applied(model) as evaluated:
        torch.testing.assert_close(evaluated.weight, average.average["weight"])
        assert not torch.equal(evaluated.weight, trained["weight"])
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, trained[name]), name


def test_a_saved_average_loads_back_equal():
    model = nn.Linear(2, 2)
    average = WeightAverage(model, decay=0.9)
    average.update(model)
    other = WeightAverage(nn.Linear(2, 2), decay=0.5)
    other.load_state_dict(average.state_dict())
    assert other.decay == 0.9 and other.updates == 1
    for name, tensor in average.average.items():
        assert torch.equal(other.average[name], tensor)


def test_a_decay_outside_zero_one_is_refused():
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(nn.Linear(2, 2), decay=1.0)
