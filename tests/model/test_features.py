import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from model.features import (
    IGNORE_INDEX,
    SEP_BOX,
    SpecialTokens,
    collate,
    collate_labels,
    encode_words,
    load_tokenizer,
    page_pixels,
    vocab_sha256,
    window_spans,
    word_pieces,
)
from model.train.minilm import minilm_tokenizer_path


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(minilm_tokenizer_path())


@given(
    st.lists(st.integers(1, 12), min_size=1, max_size=200),
    st.integers(8, 64),
    st.integers(0, 40),
)
def test_windows_cover_every_word_within_capacity(counts, max_tokens, overlap):
    spans = window_spans(counts, max_tokens, overlap)
    covered = set()
    for start, end in spans:
        assert start < end
        assert end - start == 1 or sum(counts[start:end]) <= max_tokens - 2
        covered.update(range(start, end))
    assert covered == set(range(len(counts)))
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)
    assert spans[0][0] == 0 and spans[-1][1] == len(counts)


def test_windows_overlap_by_about_the_requested_tokens():
    spans = window_spans([1] * 100, max_tokens=42, overlap_tokens=10)
    assert spans[0] == (0, 40) and spans[1] == (30, 70)


def test_word_pieces_align_with_words(tokenizer):
    pieces = word_pieces(tokenizer, ["Invoice", "No.:", "", "unbelievably"])
    assert len(pieces) == 4
    assert pieces[2] == [SpecialTokens.of(tokenizer).unk]
    assert len(pieces[1]) >= 2 and len(pieces[3]) >= 2
    assert tokenizer.decode(pieces[0]) == "invoice"


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.sampled_from(["Date:", "John", "Smith", "$1,234.00", "unbelievably", "x"]),
        min_size=1,
        max_size=120,
    )
)
def test_labels_sit_on_first_sub_tokens(tokenizer, words):
    boxes = np.tile(np.arange(len(words))[:, None], (1, 4))
    tags = np.arange(len(words)) % 5
    windows = encode_words(tokenizer, words, boxes, tags, max_tokens=32, overlap_tokens=8)
    seen = set()
    for window in windows:
        first = window.word_index >= 0
        np.testing.assert_array_equal(window.labels[first], tags[window.word_index[first]])
        assert np.all(window.labels[~first] == IGNORE_INDEX)
        np.testing.assert_array_equal(window.bbox[first], boxes[window.word_index[first]])
        assert len(window.input_ids) <= 32 and tuple(window.bbox[-1]) == SEP_BOX
        seen.update(window.word_index[first].tolist())
    assert seen == set(range(len(words)))


def test_mismatched_lengths_are_rejected(tokenizer):
    with pytest.raises(ValueError, match="2 words, 1 boxes"):
        encode_words(tokenizer, ["a", "b"], np.zeros((1, 4)))


def test_collate_pads_to_the_longest_window(tokenizer):
    windows = encode_words(
        tokenizer, ["one"] * 5, np.zeros((5, 4)), np.ones(5, int), max_tokens=5, overlap_tokens=0
    )
    pixels = [page_pixels(None, 32)] * len(windows)
    arrays = collate(windows, pixels, pad_id=0)
    length = max(len(w.input_ids) for w in windows)
    assert arrays["input_ids"].shape == (len(windows), length)
    assert arrays["bbox"].shape == (len(windows), length, 4)
    assert (
        arrays["pixel_values"].shape == (len(windows), 3, 32, 32)
        and arrays["pixel_values"].dtype == np.float32
    )
    assert arrays["attention_mask"].sum() == sum(len(w.input_ids) for w in windows)
    assert collate_labels(windows).shape == arrays["input_ids"].shape


def test_page_pixels_range_and_shape():
    image = Image.new("L", (300, 400), 0)
    pixels = page_pixels(image, 64)
    assert pixels.shape == (3, 64, 64) and pixels.min() == -1.0
    assert page_pixels(None, 64).max() == 1.0


def test_vocab_hash_is_stable(tokenizer):
    assert vocab_sha256(tokenizer) == vocab_sha256(load_tokenizer(minilm_tokenizer_path()))
    assert len(vocab_sha256(tokenizer)) == 64
