import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.features import SpecialTokens
from model.train.augment import GRID_MAX, Augmentation, augmented, word_token_positions

SPECIAL = SpecialTokens(cls=101, sep=102, pad=0, unk=100, mask=103)


def batch(rng: np.random.Generator, rows: int, length: int, padding: int) -> dict[str, np.ndarray]:
    ids = rng.integers(1000, 30000, size=(rows, length))
    ids[:, 0], ids[:, length - 1 - padding] = SPECIAL.cls, SPECIAL.sep
    mask = np.ones((rows, length), dtype=np.int64)
    if padding:
        ids[:, length - padding :], mask[:, length - padding :] = SPECIAL.pad, 0
    corner = rng.integers(0, GRID_MAX - 50, size=(rows, length, 2))
    bbox = np.concatenate([corner, corner + rng.integers(0, 50, size=(rows, length, 2))], axis=-1)
    pixels = rng.random((rows, 3, 8, 8)).astype(np.float32)
    return {"input_ids": ids, "bbox": bbox, "attention_mask": mask, "pixel_values": pixels}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 1000),
    length=st.integers(4, 40),
    padding=st.integers(0, 2),
    rate=st.floats(0.0, 0.9),
    jitter=st.integers(0, 60),
)
def test_noise_touches_only_word_tokens_and_keeps_boxes_valid(seed, length, padding, rate, jitter):
    rng = np.random.default_rng(seed)
    inputs = batch(rng, 3, length, padding)
    words = word_token_positions(inputs["input_ids"], inputs["attention_mask"], SPECIAL)
    out = augmented(inputs, Augmentation(rate, jitter), SPECIAL, rng)
    changed = out["input_ids"] != inputs["input_ids"]
    assert not (changed & ~words).any()
    assert (out["input_ids"][changed] == SPECIAL.mask).all()
    bbox = out["bbox"]
    assert bbox.dtype == inputs["bbox"].dtype and bbox.min() >= 0 and bbox.max() <= GRID_MAX
    assert (bbox[..., 0] <= bbox[..., 2]).all() and (bbox[..., 1] <= bbox[..., 3]).all()
    assert np.array_equal(bbox[~words], inputs["bbox"][~words])
    # an ordered box moved by at most `jitter` per coordinate stays within `jitter` of the original
    assert np.abs(bbox - inputs["bbox"]).max(initial=0) <= jitter
    assert out["attention_mask"] is inputs["attention_mask"] and out["pixel_values"] is inputs["pixel_values"]


def test_the_mask_rate_is_about_the_fraction_of_word_tokens_masked():
    rng = np.random.default_rng(0)
    inputs = batch(rng, 8, 500, padding=0)
    out = augmented(inputs, Augmentation(token_mask_rate=0.2), SPECIAL, rng)
    words = word_token_positions(inputs["input_ids"], inputs["attention_mask"], SPECIAL)
    assert (out["input_ids"][words] == SPECIAL.mask).mean() == pytest.approx(0.2, abs=0.02)
    assert np.array_equal(out["bbox"], inputs["bbox"])


def test_no_augmentation_is_inactive_and_bad_settings_are_refused():
    assert not Augmentation().active and Augmentation(box_jitter=3).active
    with pytest.raises(ValueError, match="token_mask_rate"):
        Augmentation(token_mask_rate=1.0)
    with pytest.raises(ValueError, match="box_jitter"):
        Augmentation(box_jitter=-1)
