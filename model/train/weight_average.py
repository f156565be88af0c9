"""An exponential moving average of a model's weights, for evaluation and the saved model.

Averaging the weights over the last few hundred steps smooths the step-to-step noise of fine-tuning on a
small training set (FUNSD's validation F1 moves by a point or two from one epoch to the next)."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def warmed_decay(decay: float, updates: int) -> float:
    """The decay for update number `updates` (from 1): lower at first, so the average is not anchored to
    the starting weights, reaching `decay` after about 1 / (1 - decay) updates."""
    return min(decay, (1 + updates) / (10 + updates))


class WeightAverage:
    """avg <- d * avg + (1 - d) * current, over the floating-point tensors of the model's state (parameters
    and buffers); `applied()` swaps the average in for the duration of a `with` block."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight-average decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.average = {
            name: tensor.detach().clone()
            for name, tensor in model.state_dict().items()
            if tensor.is_floating_point()
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        weight = 1.0 - warmed_decay(self.decay, self.updates)
        for name, tensor in model.state_dict().items():
            if name in self.average:
                self.average[name].lerp_(tensor.detach(), weight)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        current = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
        model.load_state_dict(self.average, strict=False)
        try:
            yield model
        finally:
            model.load_state_dict(current)

    def state_dict(self) -> dict[str, object]:
        return {"decay": self.decay, "updates": self.updates, "average": self.average}

    def load_state_dict(self, state: dict[str, object]) -> None:
        average = state["average"]
        assert isinstance(average, dict)
        self.decay = float(state["decay"])  # type: ignore[arg-type]
        self.updates = int(state["updates"])  # type: ignore[call-overload]
        self.average = {name: tensor.clone() for name, tensor in average.items()}
