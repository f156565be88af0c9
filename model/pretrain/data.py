"""Unlabelled pages for pre-training and the masking / covering of LayoutLMv2's three objectives. No torch.

A page is OCR'd words with pixel boxes and an upright page image (`PretrainPage`, one JSON line each in
a pages file; `service.cli.pretraining` writes it from page images). `pretrain_batch` turns windows of such
pages into one batch with the targets of

- MVLM (masked visual-language modelling): ~15% of word tokens replaced (80% [MASK], 10% a random token,
  10% unchanged), their boxes kept; `mlm_labels` holds the original ids there, IGNORE_INDEX elsewhere;
- TIA (text-image alignment): the image regions of randomly chosen text lines covered; `tia_labels` is 1
  on tokens of covered lines, 0 on other word tokens, IGNORE_INDEX on MVLM-masked tokens, specials, padding;
- TIM (text-image matching): some rows get another page's image or none (zeros); `tim_labels` is 1 when
  image and text match. Negative rows get the same masking and covering, and TIA targets all 1 (covered).

The image regions of MVLM-masked tokens and of covered lines are filled with `COVER_VALUE` in the page
pixels (after any TIM replacement), so the image cannot give the masked words away.
"""

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tokenizers import Tokenizer

from model.boxes import group_lines, normalize_box, reading_order
from model.features import IGNORE_INDEX, SpecialTokens, Window, collate, encode_words, page_pixels

COVER_VALUE = 0.0  # pixels are in [-1, 1]: mid grey
KEEP, REPLACE, DROP = 0, 1, 2  # TIM image actions


@dataclass(frozen=True)
class MaskingRates:
    """How often each objective's corruption is applied."""

    mask: float = 0.15  # fraction of word tokens MVLM predicts
    mask_token: float = 0.8  # of those: replaced by [MASK]
    random_token: float = 0.1  # of those: replaced by a random token (the rest stay unchanged)
    cover_lines: float = 0.15  # fraction of text lines whose image regions TIA covers
    replace_image: float = 0.15  # fraction of rows whose image TIM replaces by another page's
    drop_image: float = 0.15  # fraction of rows whose image TIM drops (zeros)


@dataclass(frozen=True)
class PretrainPage:
    """One OCR'd page: words in recognition order with pixel boxes of the upright page image."""

    name: str
    image: str  # path of the upright page image, relative to the pages file's folder or absolute
    width: int
    height: int
    words: list[str] = field(default_factory=list)
    boxes: list[list[float]] = field(default_factory=list)  # [x0, y0, x1, y1] pixels of width x height


def write_pages(pages: Sequence[PretrainPage], path: Path) -> Path:
    """One JSON object per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(p)) + "\n" for p in pages), encoding="utf-8")
    return path


def read_pages(path: Path) -> list[PretrainPage]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [PretrainPage(**json.loads(line)) for line in lines if line.strip()]


@dataclass(frozen=True)
class EncodedPretrainPage:
    """A page cut into windows, with the text-line id of each word and the page pixels (computed once)."""

    windows: list[Window]
    word_lines: np.ndarray  # [N] int64 line id of each word (reading order)
    pixels: np.ndarray  # [3, S, S] float32


def encode_pretrain_page(
    page: PretrainPage, root: Path, tokenizer: Tokenizer, image_size: int, max_tokens: int, overlap: int
) -> EncodedPretrainPage:
    """Words in reading order with boxes on the 0-1000 grid, windows, geometric text lines, pixels."""
    lines = group_lines(page.boxes) if page.boxes else []
    order = reading_order(page.boxes, lines) if page.boxes else []
    grid = [normalize_box(page.boxes[i], page.width, page.height) for i in order]
    boxes = np.asarray(grid, dtype=np.int64).reshape(-1, 4)
    windows = encode_words(tokenizer, [page.words[i] for i in order], boxes, None, max_tokens, overlap)
    with Image.open(Path(root) / page.image) as opened:
        pixels = page_pixels(opened.convert("RGB"), image_size)
    return EncodedPretrainPage(windows, np.asarray([lines[i] for i in order], dtype=np.int64), pixels)


def token_lines(windows: Sequence[Window], word_lines: Sequence[np.ndarray], length: int) -> np.ndarray:
    """[B, length] text-line id of each word token (every sub-token of a word); -1 for [CLS], [SEP] and
    padding."""
    lines = np.full((len(windows), length), -1, dtype=np.int64)
    for row, (window, page_lines) in enumerate(zip(windows, word_lines, strict=True)):
        current = -1
        for position in range(1, len(window.input_ids) - 1):  # between [CLS] and [SEP]
            word = int(window.word_index[position])
            current = int(page_lines[word]) if word >= 0 else current
            lines[row, position] = current
    return lines


def mask_tokens(
    input_ids: np.ndarray,
    maskable: np.ndarray,
    rng: np.random.Generator,
    special: SpecialTokens,
    vocab_size: int,
    rates: MaskingRates,
) -> tuple[np.ndarray, np.ndarray]:
    """MVLM corruption -> (corrupted ids, labels). Each row with a maskable token gets at least one."""
    chosen = (rng.random(input_ids.shape) < rates.mask) & maskable
    for row in np.flatnonzero(~chosen.any(axis=1) & maskable.any(axis=1)):
        chosen[row, rng.choice(np.flatnonzero(maskable[row]))] = True
    kind = rng.random(input_ids.shape)
    corrupted = input_ids.copy()
    corrupted[chosen & (kind < rates.mask_token)] = special.mask
    random_slots = chosen & (kind >= rates.mask_token) & (kind < rates.mask_token + rates.random_token)
    corrupted[random_slots] = rng.integers(0, vocab_size, size=int(random_slots.sum()))
    labels = np.where(chosen, input_ids, IGNORE_INDEX)
    return corrupted, labels


def cover_lines(lines: np.ndarray, rng: np.random.Generator, rate: float) -> np.ndarray:
    """[B, L] bool: tokens of randomly chosen text lines (each line of a row chosen with `rate`)."""
    covered = np.zeros(lines.shape, dtype=bool)
    for row in range(lines.shape[0]):
        present = np.unique(lines[row][lines[row] >= 0])
        chosen = present[rng.random(len(present)) < rate]
        covered[row] = np.isin(lines[row], chosen) & (lines[row] >= 0)
    return covered


def tia_labels(covered: np.ndarray, word_tokens: np.ndarray, mlm_labels: np.ndarray) -> np.ndarray:
    """1 covered / 0 not on word tokens that MVLM did not mask; IGNORE_INDEX elsewhere."""
    scored = word_tokens & (mlm_labels == IGNORE_INDEX)
    return np.where(scored, covered.astype(np.int64), IGNORE_INDEX)


def image_actions(
    page_ids: Sequence[int], num_pages: int, rng: np.random.Generator, rates: MaskingRates
) -> tuple[np.ndarray, np.ndarray]:
    """TIM: (action per row: KEEP / REPLACE / DROP, source page per row). A replacement comes from another
    page; with a single page there is none, so such rows are dropped instead."""
    draw = rng.random(len(page_ids))
    actions = np.where(draw < rates.replace_image, REPLACE, KEEP)
    actions[(draw >= rates.replace_image) & (draw < rates.replace_image + rates.drop_image)] = DROP
    sources = np.asarray(page_ids, dtype=np.int64).copy()
    for row in np.flatnonzero(actions == REPLACE):
        if num_pages < 2:
            actions[row] = DROP
            continue
        other = int(rng.integers(0, num_pages - 1))
        sources[row] = other + (other >= page_ids[row])  # any page but its own
    return actions, sources


def cover_boxes(pixels: np.ndarray, boxes: np.ndarray, value: float = COVER_VALUE) -> np.ndarray:
    """A copy of [3, S, S] pixels with each 0-1000 grid box [x0, y0, x1, y1] filled with `value` (at least
    one pixel wide)."""
    covered = pixels.copy()
    size_y, size_x = pixels.shape[-2:]
    for x0, y0, x1, y1 in np.asarray(boxes).reshape(-1, 4):
        left, top = int(x0 * size_x // 1000), int(y0 * size_y // 1000)
        right, bottom = (
            max(left + 1, -(-int(x1) * size_x // 1000)),
            max(top + 1, -(-int(y1) * size_y // 1000)),
        )
        covered[:, top:bottom, left:right] = value
    return covered


def pretrain_batch(
    pages: Sequence[EncodedPretrainPage],
    items: Sequence[tuple[int, int]],
    rng: np.random.Generator,
    special: SpecialTokens,
    vocab_size: int,
    rates: MaskingRates,
) -> dict[str, np.ndarray]:
    """(page, window) items -> model inputs plus `mlm_labels`, `tia_labels` [B, L] and `tim_labels` [B]."""
    windows = [pages[p].windows[w] for p, w in items]
    actions, sources = image_actions([p for p, _ in items], len(pages), rng, rates)
    pixels = [
        pages[s].pixels if a != DROP else np.zeros_like(pages[s].pixels)
        for a, s in zip(actions, sources, strict=True)
    ]
    batch = collate(windows, pixels, special.pad)
    lines = token_lines(windows, [pages[p].word_lines for p, _ in items], batch["input_ids"].shape[1])
    word_tokens = lines >= 0
    batch["input_ids"], batch["mlm_labels"] = mask_tokens(
        batch["input_ids"], word_tokens, rng, special, vocab_size, rates
    )
    covered = cover_lines(lines, rng, rates.cover_lines)
    hidden = (batch["mlm_labels"] != IGNORE_INDEX) | covered
    for row in range(len(items)):
        batch["pixel_values"][row] = cover_boxes(batch["pixel_values"][row], batch["bbox"][row][hidden[row]])
    negative = actions != KEEP
    covered[negative] = word_tokens[negative]  # TIA targets of a non-matching image: all covered
    batch["tia_labels"] = tia_labels(covered, word_tokens, batch["mlm_labels"])
    batch["tim_labels"] = (~negative).astype(np.int64)
    return batch
