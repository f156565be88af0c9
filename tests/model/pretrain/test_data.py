from pathlib import Path

import numpy as np
import pytest

from model.features import IGNORE_INDEX, SpecialTokens, encode_words, load_tokenizer
from model.pretrain.data import (
    COVER_VALUE,
    DROP,
    KEEP,
    REPLACE,
    EncodedPretrainPage,
    MaskingRates,
    PretrainPage,
    cover_boxes,
    cover_lines,
    encode_pretrain_page,
    image_actions,
    mask_tokens,
    pretrain_batch,
    read_pages,
    tia_labels,
    token_lines,
    write_pages,
)
from model.train.minilm import minilm_tokenizer_path
from tests.fixtures.forms import SyntheticPage

SIZE = 64


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(minilm_tokenizer_path())


@pytest.fixture(scope="module")
def special(tokenizer) -> SpecialTokens:
    return SpecialTokens.of(tokenizer)


def pretrain_pages(synthetic: list[SyntheticPage], root: Path) -> list[PretrainPage]:
    """Synthetic forms as OCR'd pages (exact words and boxes), their images under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    pages = []
    for page in synthetic:
        page.image.save(root / f"{page.name}.png")
        words = [w for e in page.annotation["form"] for w in e["words"]]
        pages.append(
            PretrainPage(
                page.name,
                f"{page.name}.png",
                page.image.width,
                page.image.height,
                [w["text"] for w in words],
                [list(map(float, w["box"])) for w in words],
            )
        )
    return pages


def test_pages_round_trip_through_jsonl(synthetic_pages, tmp_path: Path):
    pages = pretrain_pages(synthetic_pages[:2], tmp_path)
    assert read_pages(write_pages(pages, tmp_path / "pages.jsonl")) == pages


def test_every_sub_token_carries_its_words_line(tokenizer):
    boxes = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [0, 50, 10, 60]])
    window = encode_words(tokenizer, ["Name:", "Schwarzenegger", "Date:"], boxes)[0]
    lines = token_lines([window], [np.array([4, 4, 7])], len(window.input_ids) + 2)
    pieces = [
        len(tokenizer.encode(w, add_special_tokens=False).ids) for w in ("Name:", "Schwarzenegger", "Date:")
    ]
    assert pieces[1] > 1  # a word of several sub-tokens
    expected = [-1] + [4] * (pieces[0] + pieces[1]) + [7] * pieces[2] + [-1] + [-1, -1]  # [SEP], padding
    assert lines[0].tolist() == expected


def test_masking_replaces_80_10_10_and_labels_only_masked_tokens(special: SpecialTokens):
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 2000, size=(64, 256))
    maskable = np.ones_like(ids, dtype=bool)
    maskable[:, 0] = maskable[:, -1] = False  # [CLS], [SEP]
    corrupted, labels = mask_tokens(ids, maskable, rng, special, 30522, MaskingRates())
    chosen = labels != IGNORE_INDEX
    assert chosen.mean() == pytest.approx(0.15 * 254 / 256, abs=0.01)
    assert not chosen[~maskable].any() and (corrupted[~maskable] == ids[~maskable]).all()
    assert (labels[chosen] == ids[chosen]).all() and (corrupted[~chosen] == ids[~chosen]).all()
    as_mask = (corrupted[chosen] == special.mask).mean()
    unchanged = (corrupted[chosen] == ids[chosen]).mean()
    assert as_mask == pytest.approx(0.8, abs=0.02) and unchanged == pytest.approx(0.1, abs=0.02)
    assert 1 - as_mask - unchanged == pytest.approx(0.1, abs=0.02)  # a random token


def test_every_row_with_words_gets_a_masked_token(special: SpecialTokens):
    ids = np.arange(12).reshape(3, 4) + 1000
    maskable = np.array([[0, 1, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]], dtype=bool)
    _, labels = mask_tokens(ids, maskable, np.random.default_rng(0), special, 30522, MaskingRates(mask=0.0))
    assert (labels != IGNORE_INDEX).sum(axis=1).tolist() == [1, 0, 1]
    assert labels[2, 1] == ids[2, 1]


def test_covering_takes_whole_lines_and_never_specials():
    lines = np.array([[-1, 0, 0, 1, 1, 1, 2, -1, -1], [-1, 5, 5, 5, 6, 6, 6, 6, -1]])
    assert not cover_lines(lines, np.random.default_rng(0), 0.0).any()
    assert (cover_lines(lines, np.random.default_rng(0), 1.0) == (lines >= 0)).all()
    rng = np.random.default_rng(1)
    for _ in range(20):
        covered = cover_lines(lines, rng, 0.5)
        for row in range(2):
            for line in set(lines[row].tolist()) - {-1}:
                assert len(set(covered[row][lines[row] == line].tolist())) == 1  # all of a line or none
        assert not covered[lines < 0].any()


def test_tia_scores_unmasked_word_tokens_only():
    covered = np.array([[False, True, True, False, False]])
    words = np.array([[False, True, True, True, False]])
    mlm = np.array([[IGNORE_INDEX, IGNORE_INDEX, 2001, IGNORE_INDEX, IGNORE_INDEX]])
    assert tia_labels(covered, words, mlm).tolist() == [[IGNORE_INDEX, 1, IGNORE_INDEX, 0, IGNORE_INDEX]]


def test_image_actions_replace_with_another_page_or_drop():
    rng = np.random.default_rng(0)
    pages = [0, 1, 2, 2, 1, 0] * 10
    actions, sources = image_actions(pages, 3, rng, MaskingRates(replace_image=1.0, drop_image=0.0))
    assert (actions == REPLACE).all() and (sources != np.array(pages)).all() and set(sources) == {0, 1, 2}
    actions, _ = image_actions([0, 0], 1, rng, MaskingRates(replace_image=1.0))
    assert (actions == DROP).all()  # one page: nothing to replace with
    actions, sources = image_actions(pages, 3, rng, MaskingRates(replace_image=0.0, drop_image=0.0))
    assert (actions == KEEP).all() and (sources == pages).all()
    actions, _ = image_actions(list(range(3)) * 1000, 3, rng, MaskingRates())
    assert (actions == REPLACE).mean() == pytest.approx(0.15, abs=0.02)
    assert (actions == DROP).mean() == pytest.approx(0.15, abs=0.02)


def test_cover_boxes_fills_the_grid_boxes_in_pixels():
    pixels = np.ones((3, 4, 4), dtype=np.float32)
    covered = cover_boxes(pixels, np.array([[0, 0, 500, 500], [760, 760, 761, 761]]))
    expected = np.ones((4, 4))
    expected[:2, :2] = COVER_VALUE
    expected[3, 3] = COVER_VALUE  # a box under a pixel still covers one
    assert (covered == expected).all() and (pixels == 1).all()


def _encoded(synthetic_pages, tmp_path: Path, tokenizer) -> list[EncodedPretrainPage]:
    pages = pretrain_pages(synthetic_pages[:2], tmp_path)
    return [encode_pretrain_page(p, tmp_path, tokenizer, SIZE, 96, 16) for p in pages]


def test_a_batch_hides_masked_and_covered_regions_and_labels_tim(
    synthetic_pages, tmp_path, tokenizer, special
):
    pages = _encoded(synthetic_pages, tmp_path, tokenizer)
    items = [(0, 0), (1, 0), (0, 1), (1, 1)] * 4
    rates = MaskingRates(replace_image=0.25, drop_image=0.25)
    batch = pretrain_batch(pages, items, np.random.default_rng(3), special, 30522, rates)
    masked, tia = batch["mlm_labels"] != IGNORE_INDEX, batch["tia_labels"]
    assert masked.any(axis=1).all() and not (masked & (tia != IGNORE_INDEX)).any()
    assert set(batch["tim_labels"].tolist()) == {0, 1}
    for row, (page, _) in enumerate(items):
        hidden = masked[row] | (tia[row] == 1)
        if batch["tim_labels"][row] == 1:  # the page's own image, masked and covered regions filled
            expected = pages[page].pixels.copy()
            for box in batch["bbox"][row][hidden]:
                expected = cover_boxes(expected, box)
            np.testing.assert_array_equal(batch["pixel_values"][row], expected)
        else:  # another image or none: every scored token counts as covered
            assert set(tia[row][tia[row] != IGNORE_INDEX].tolist()) == {1}
            assert not np.array_equal(batch["pixel_values"][row], pages[page].pixels)
        x0, y0, x1, y1 = batch["bbox"][row][masked[row]][0] * SIZE // 1000
        assert (
            batch["pixel_values"][row][:, y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)] == COVER_VALUE
        ).all()
