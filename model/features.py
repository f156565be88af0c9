"""Words + boxes + page image -> model input tensors (numpy). No torch: the serving runtime uses this too.

Tokenisation uses the `tokenizers` library with truncation and padding off; long pages are cut into
windows of at most `max_tokens` tokens (with [CLS] and [SEP]) that overlap by about `overlap_tokens`.
Labels and predictions live on each word's first sub-token. Tensor names are shared by features, the
exported ONNX graph and the runtime: see `INPUT_NAMES`.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tokenizers import Tokenizer

INPUT_NAMES: tuple[str, ...] = ("input_ids", "bbox", "attention_mask", "pixel_values")
IGNORE_INDEX = -100
CLS_BOX = (0, 0, 0, 0)
SEP_BOX = (1000, 1000, 1000, 1000)
PAD_BOX = (0, 0, 0, 0)


def load_tokenizer(path: Path) -> Tokenizer:
    """A WordPiece tokenizer from tokenizer.json with truncation and padding turned off."""
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def vocab_sha256(tokenizer: Tokenizer) -> str:
    """Stable hash of the vocabulary, stored in artifacts to check that model and tokenizer match."""
    vocab = json.dumps(tokenizer.get_vocab(with_added_tokens=True), sort_keys=True)
    return hashlib.sha256(vocab.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SpecialTokens:
    cls: int
    sep: int
    pad: int
    unk: int
    mask: int

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> "SpecialTokens":
        ids = [tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]")]
        if any(i is None for i in ids):
            raise ValueError("tokenizer lacks one of [CLS] [SEP] [PAD] [UNK] [MASK]")
        return cls(*ids)  # type: ignore[arg-type]


def word_pieces(tokenizer: Tokenizer, words: Sequence[str]) -> list[list[int]]:
    """Sub-token ids of each word; a word that yields none (empty text) becomes [UNK]."""
    if not words:
        return []
    encoding = tokenizer.encode(list(words), is_pretokenized=True, add_special_tokens=False)
    pieces: list[list[int]] = [[] for _ in words]
    for token_id, word_id in zip(encoding.ids, encoding.word_ids, strict=True):
        if word_id is not None:
            pieces[word_id].append(token_id)
    unk = SpecialTokens.of(tokenizer).unk
    return [p or [unk] for p in pieces]


@dataclass(frozen=True)
class Window:
    """One model input sequence covering words [first_word, end_word) of a page."""

    input_ids: np.ndarray  # [L] int64, with [CLS] ... [SEP]
    bbox: np.ndarray  # [L, 4] int64 on the 0-1000 grid
    word_index: np.ndarray  # [L] int64: the word whose first sub-token this is, else -1
    labels: np.ndarray  # [L] int64: the word's tag on its first sub-token, else IGNORE_INDEX
    first_word: int
    end_word: int


def window_spans(piece_counts: Sequence[int], max_tokens: int, overlap_tokens: int) -> list[tuple[int, int]]:
    """Word ranges [start, end) whose token counts fit `max_tokens - 2`, overlapping by about
    `overlap_tokens`. Covers every word; a word longer than the window gets a window of its own."""
    capacity = max_tokens - 2
    if capacity < 1:
        raise ValueError("max_tokens must leave room for [CLS] and [SEP]")
    spans: list[tuple[int, int]] = []
    start, total = 0, len(piece_counts)
    while start < total:
        end, used = start, 0
        while end < total and (end == start or used + piece_counts[end] <= capacity):
            used += piece_counts[end]
            end += 1
        spans.append((start, end))
        if end >= total:
            break
        next_start, kept = end, 0
        while next_start - 1 > start and kept + piece_counts[next_start - 1] <= overlap_tokens:
            next_start -= 1
            kept += piece_counts[next_start]
        start = next_start
    return spans


def build_window(
    pieces: Sequence[Sequence[int]],
    boxes: np.ndarray,
    tags: np.ndarray | None,
    span: tuple[int, int],
    special: SpecialTokens,
    max_tokens: int,
) -> Window:
    """The token sequence of one word span, truncating a single over-long word to fit."""
    ids, token_boxes, word_index, labels = [special.cls], [CLS_BOX], [-1], [IGNORE_INDEX]
    for word in range(*span):
        word_ids = list(pieces[word])[: max(1, max_tokens - 1 - len(ids))]
        ids.extend(word_ids)
        token_boxes.extend([tuple(boxes[word])] * len(word_ids))
        word_index.extend([word] + [-1] * (len(word_ids) - 1))
        first_label = int(tags[word]) if tags is not None else IGNORE_INDEX
        labels.extend([first_label] + [IGNORE_INDEX] * (len(word_ids) - 1))
    ids.append(special.sep)
    token_boxes.append(SEP_BOX)
    word_index.append(-1)
    labels.append(IGNORE_INDEX)
    return Window(
        input_ids=np.asarray(ids, dtype=np.int64),
        bbox=np.asarray(token_boxes, dtype=np.int64).reshape(-1, 4),
        word_index=np.asarray(word_index, dtype=np.int64),
        labels=np.asarray(labels, dtype=np.int64),
        first_word=span[0],
        end_word=span[1],
    )


def encode_words(
    tokenizer: Tokenizer,
    words: Sequence[str],
    boxes: np.ndarray,
    tags: np.ndarray | None = None,
    max_tokens: int = 512,
    overlap_tokens: int = 128,
) -> list[Window]:
    """All windows of one page. `boxes` is [N, 4] on the 0-1000 grid; `tags` optional BIO tag ids."""
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    if len(words) != len(boxes) or (tags is not None and len(tags) != len(words)):
        raise ValueError(
            f"{len(words)} words, {len(boxes)} boxes and {None if tags is None else len(tags)} tags"
        )
    pieces = word_pieces(tokenizer, words)
    special = SpecialTokens.of(tokenizer)
    if not pieces:
        return [build_window([], boxes, tags, (0, 0), special, max_tokens)]
    spans = window_spans([len(p) for p in pieces], max_tokens, overlap_tokens)
    return [build_window(pieces, boxes, tags, span, special, max_tokens) for span in spans]


def page_pixels(image: Image.Image | None, size: int) -> np.ndarray:
    """Page image -> [3, size, size] float32 in [-1, 1]; a blank (white) page when there is no image."""
    if image is None:
        return np.ones((3, size, size), dtype=np.float32)
    resized = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    array = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    return np.ascontiguousarray(array)


def collate(windows: Sequence[Window], pixels: Sequence[np.ndarray], pad_id: int) -> dict[str, np.ndarray]:
    """Pad windows to one length and stack them with their page pixels into named input arrays."""
    if len(windows) != len(pixels) or not windows:
        raise ValueError("need one pixel array per window, and at least one window")
    length = max(len(w.input_ids) for w in windows)
    batch = len(windows)
    input_ids = np.full((batch, length), pad_id, dtype=np.int64)
    bbox = np.zeros((batch, length, 4), dtype=np.int64)
    attention_mask = np.zeros((batch, length), dtype=np.int64)
    for row, window in enumerate(windows):
        n = len(window.input_ids)
        input_ids[row, :n] = window.input_ids
        bbox[row, :n] = window.bbox
        attention_mask[row, :n] = 1
    return {
        "input_ids": input_ids,
        "bbox": bbox,
        "attention_mask": attention_mask,
        "pixel_values": np.stack(pixels).astype(np.float32),
    }


def collate_labels(windows: Sequence[Window]) -> np.ndarray:
    """Window labels padded with IGNORE_INDEX to the batch length (same length as `collate`)."""
    length = max(len(w.labels) for w in windows)
    labels = np.full((len(windows), length), IGNORE_INDEX, dtype=np.int64)
    for row, window in enumerate(windows):
        labels[row, : len(window.labels)] = window.labels
    return labels
