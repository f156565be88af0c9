"""Training-time input noise for fine-tuning on a few forms: word tokens masked, boxes shifted. No torch.

The labels stay as they are: the model must tag a word whose text it cannot see from its box and context,
and must not depend on a box being exact to the pixel (OCR boxes are not)."""

from dataclasses import dataclass

import numpy as np

from model.features import SpecialTokens

GRID_MAX = 1000


@dataclass(frozen=True)
class Augmentation:
    token_mask_rate: float = 0.0  # word tokens replaced by [MASK]
    box_jitter: int = 0  # each box coordinate of a word token moves by up to this much on the 0-1000 grid

    def __post_init__(self) -> None:
        if not 0.0 <= self.token_mask_rate < 1.0:
            raise ValueError(f"token_mask_rate must be in [0, 1), got {self.token_mask_rate}")
        if not 0 <= self.box_jitter <= GRID_MAX:
            raise ValueError(f"box_jitter must be in [0, {GRID_MAX}], got {self.box_jitter}")

    @property
    def active(self) -> bool:
        return self.token_mask_rate > 0 or self.box_jitter > 0


def word_token_positions(
    input_ids: np.ndarray, attention_mask: np.ndarray, special: SpecialTokens
) -> np.ndarray:
    """[B, L] bool: real tokens of words (not padding, [CLS], [SEP])."""
    specials = np.isin(input_ids, [special.cls, special.sep, special.pad])
    return (attention_mask > 0) & ~specials


def augmented(
    inputs: dict[str, np.ndarray],
    augmentation: Augmentation,
    special: SpecialTokens,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """A copy of collated inputs with `augmentation`'s noise on word tokens; other inputs unchanged."""
    words = word_token_positions(inputs["input_ids"], inputs["attention_mask"], special)
    result = dict(inputs)
    if augmentation.token_mask_rate > 0:
        chosen = (rng.random(words.shape) < augmentation.token_mask_rate) & words
        result["input_ids"] = np.where(chosen, special.mask, inputs["input_ids"])
    if augmentation.box_jitter > 0:
        bbox = inputs["bbox"]
        shift = rng.integers(-augmentation.box_jitter, augmentation.box_jitter + 1, size=bbox.shape)
        moved = np.clip(bbox + shift * words[..., None], 0, GRID_MAX).astype(bbox.dtype)
        x0, y0, x1, y1 = np.moveaxis(moved, -1, 0)
        ordered = [np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)]
        result["bbox"] = np.stack(ordered, axis=-1)
    return result
