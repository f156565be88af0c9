import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from model.train.relation_loss import tail_choice_loss


def test_tail_choice_loss_is_a_softmax_over_none_and_the_candidates():
    # entities 0..2; pairs (0 -> 2) linked, (1 -> 2) not, third pair is padding
    logits = torch.tensor([[2.0, -1.0, 5.0]])
    tails = torch.tensor([[2, 2, 0]])
    linked = torch.tensor([[1.0, 0.0, -1.0]])
    denominator = math.log(1 + math.exp(2.0) + math.exp(-1.0))
    assert tail_choice_loss(logits, tails, linked, 3).item() == pytest.approx(denominator - 2.0)
    unlinked = torch.tensor([[0.0, 0.0, -1.0]])  # the value has no key: "none" is the answer
    assert tail_choice_loss(logits, tails, unlinked, 3).item() == pytest.approx(denominator)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-60, 60), st.integers(0, 3), st.sampled_from([-1.0, 0.0, 1.0])),
        min_size=1,
        max_size=12,
    )
)
def test_tail_choice_loss_is_never_negative_even_with_several_keys_per_value(rows):
    """A value linked to several keys must not let the loss run to minus infinity by inflating them."""
    logits = torch.tensor([[r[0] for r in rows]], requires_grad=True)
    tails = torch.tensor([[r[1] for r in rows]])
    targets = torch.tensor([[r[2] for r in rows]])
    if not (targets >= 0).any():
        return
    loss = tail_choice_loss(logits, tails, targets, 4)
    loss.backward()
    assert loss.item() >= -1e-5 and torch.isfinite(logits.grad).all()
