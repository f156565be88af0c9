import io
import os
import subprocess
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from model.boxes import contains_box
from service.ingest import ocr, tesseract
from service.ingest.ocr import (
    effective_dpi,
    line_boxes,
    ocr_pages,
    ocr_workers,
    parse_tesseract_data,
    rotation_from_osd,
    upscale_factor,
)
from service.ingest.page import Page, Word
from service.settings import Settings
from tests.fixtures.forms import SyntheticPage, page_boxes

FAST = Settings(ocr_quality="fast", ocr_detect_orientation=False)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def recall(truth: SyntheticPage, words: Sequence[Word]) -> float:
    """Share of the true words found with the same text and a box overlapping the true one (IoU >= 0.5)."""
    texts = [w["text"] for e in truth.annotation["form"] for w in e["words"]]
    found = sum(
        any(w.text == text and iou(w.box_px, box) >= 0.5 for w in words)
        for text, box in zip(texts, page_boxes(truth), strict=True)
    )
    return found / len(texts)


def image_page(image: Image.Image, index: int = 0) -> Page:
    return Page(index, image, image.width, image.height)


# --- real tesseract -------------------------------------------------------------------------------------


def test_fast_ocr_recovers_most_words_with_their_boxes(synthetic_pages: list[SyntheticPage]):
    (page,) = ocr_pages([image_page(synthetic_pages[0].image)], FAST)
    assert page.error is None and page.words is not None and page.rotation == 0
    assert recall(synthetic_pages[0], page.words) >= 0.8
    assert all(0 <= w.confidence <= 1 and w.line_id is not None for w in page.words)


def test_accurate_ocr_maps_upscaled_boxes_back_to_the_page(synthetic_pages: list[SyntheticPage]):
    (page,) = ocr_pages([image_page(synthetic_pages[1].image)], Settings())  # the default: accurate + OSD
    assert page.error is None and page.words is not None and page.rotation == 0
    assert (page.width, page.height) == synthetic_pages[1].image.size
    assert recall(synthetic_pages[1], page.words) >= 0.85


@pytest.mark.parametrize("turned", [90, 180, 270])
def test_rotated_scans_are_turned_upright_before_ocr(synthetic_pages: list[SyntheticPage], turned: int):
    truth = synthetic_pages[2]
    scan = truth.image.rotate(turned, expand=True)  # counter-clockwise, as a scanner might
    (page,) = ocr_pages([image_page(scan)], Settings(ocr_quality="fast"))
    assert page.rotation == turned and page.error is None
    assert page.image is not None and page.image.size == truth.image.size
    assert recall(truth, page.words or []) >= 0.8


def test_blank_page_has_no_words_and_no_rotation():
    (page,) = ocr_pages([image_page(Image.new("L", (850, 1100), 255))], Settings(ocr_quality="fast"))
    assert (page.words, page.rotation, page.error) == ([], 0, None)


def test_a_page_over_the_time_limit_is_reported_failed(synthetic_pages: list[SyntheticPage]):
    (page,) = ocr_pages([image_page(synthetic_pages[0].image)], Settings(ocr_page_timeout_s=0.001))
    assert page.words is None and page.error is not None and "longer than" in page.error


def test_pages_run_in_parallel_in_order_and_a_failure_stays_on_its_page(
    synthetic_pages: list[SyntheticPage], monkeypatch: pytest.MonkeyPatch
):
    real = tesseract.recognise

    def failing_on_narrow_pages(image: Image.Image, *args: Any) -> Any:
        if image.width == 123:
            raise tesseract.TesseractError("simulated failure")
        return real(image, *args)

    monkeypatch.setattr(ocr, "recognise", failing_on_narrow_pages)
    strips = [p.image.crop((0, 0, 850, 250)) for p in synthetic_pages[:2]]
    done = Page(2, None, 100, 100, [Word("given", (1, 1, 9, 9))], "json")
    pages = [
        image_page(strips[0], 0),
        image_page(Image.new("L", (123, 50), 255), 1),
        done,
        image_page(strips[1], 3),
    ]
    results = ocr_pages(pages, Settings(ocr_quality="fast", ocr_detect_orientation=False, ocr_workers=2))
    assert [p.index for p in results] == [0, 1, 2, 3]
    assert (
        results[1].words is None and results[1].error is not None and "simulated failure" in results[1].error
    )
    assert results[2] is done
    assert all(p.error is None and p.words for p in (results[0], results[3]))


def test_tesseract_gets_one_thread_the_psm_and_an_upscaled_image(monkeypatch: pytest.MonkeyPatch):
    """Each tesseract process gets OMP_THREAD_LIMIT=1 in its own environment; this process's environment
    is left as it was (a training child started later must not inherit the limit)."""
    calls: list[dict[str, Any]] = []

    def fake_run(command: list[str], **kwargs: Any) -> Any:
        header = tesseract.pnm_bytes(Image.new("L", (1, 1))).split(b"\n")[0]
        assert kwargs["input"].startswith(header)  # the page goes in as an uncompressed PGM
        size = Image.open(io.BytesIO(kwargs["input"])).size
        calls.append({"size": size, "args": command[3:], "omp": kwargs["env"].get("OMP_THREAD_LIMIT")})
        return subprocess.CompletedProcess(command, 0, b"", b"")

    monkeypatch.setattr(tesseract.subprocess, "run", fake_run)
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    page = image_page(Image.new("L", (850, 1100), 255))
    ocr_pages([page], Settings(ocr_detect_orientation=False))
    ocr_pages([page], Settings(ocr_detect_orientation=False, ocr_quality="fast", ocr_psm=6))
    assert calls[0] == {
        "size": (1700, 2200),
        "args": ["-l", "eng", "--psm", "11", "--dpi", "200", "tsv"],
        "omp": "1",
    }
    assert calls[1] == {
        "size": (850, 1100),
        "args": ["-l", "eng", "--psm", "6", "--dpi", "100", "tsv"],
        "omp": "1",
    }
    assert "OMP_THREAD_LIMIT" not in os.environ


# --- pure functions -------------------------------------------------------------------------------------


def test_tesseract_rows_become_words_with_page_unique_lines():
    data = {
        "text": ["", "TO:", "John", " ", "Smith", "Date", "noise"],
        "conf": [-1, 96.5, 91, 95, 88, 90, -1],
        "block_num": [1, 1, 1, 1, 1, 2, 2],
        "par_num": [1, 1, 1, 1, 2, 1, 1],
        "line_num": [1, 1, 1, 1, 1, 1, 1],
        "left": [0, 20, 60, 90, 100, 20, 0],
        "top": [0, 10, 10, 10, 10, 40, 0],
        "width": [0, 30, 30, 5, 40, 40, 5],
        "height": [0, 20, 20, 20, 20, 20, 5],
    }
    words = parse_tesseract_data(data, 2.0, (60, 40))
    assert [(w.text, w.line_id, w.block_id) for w in words] == [
        ("TO:", 0, 1),
        ("John", 0, 1),
        ("Smith", 1, 1),
        ("Date", 2, 2),
    ]
    assert words[0].box_px == (10.0, 5.0, 25.0, 15.0) and words[0].confidence == pytest.approx(0.965)
    assert words[2].box_px == (50.0, 5.0, 60.0, 15.0)  # clamped to the 60 px wide page
    assert parse_tesseract_data({}, 1.0, (10, 10)) == []


def test_upscale_and_dpi_rules():
    assert effective_dpi(850, 1100, None) == 100 and effective_dpi(850, 1100, 300) == 300
    assert upscale_factor(100, 300, 10_000, 40_000_000) == 2.0
    assert upscale_factor(200, 300, 10_000, 40_000_000) == 1.5
    assert upscale_factor(260, 300, 10_000, 40_000_000) == 1.0  # not worth resampling
    assert upscale_factor(100, 0, 10_000, 40_000_000) == 1.0  # fast mode
    assert upscale_factor(100, 300, 10_000_000, 20_000_000) == pytest.approx(2**0.5)  # pixel cap


def test_osd_rotation_needs_confidence():
    assert rotation_from_osd({"rotate": 90, "orientation_conf": 5.5}) == 90
    assert rotation_from_osd({"rotate": 180, "orientation_conf": 1.2}) == 0
    assert rotation_from_osd({"rotate": 0, "orientation_conf": 9.0}) == 0
    assert rotation_from_osd({"rotate": "x"}) == 0
    assert rotation_from_osd({}) == 0


def test_worker_count(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ocr.os, "cpu_count", lambda: 8)
    assert ocr_workers(Settings(), 3) == 3
    assert ocr_workers(Settings(ocr_workers=2), 5) == 2
    assert ocr_workers(Settings(), 0) == 1


coordinate = st.integers(0, 500)
word_strategy = st.builds(
    lambda x, y, w, h, line: Word("w", (x, y, x + w, y + h), 1.0, line),
    coordinate,
    coordinate,
    st.integers(0, 80),
    st.integers(0, 30),
    st.one_of(st.none(), st.integers(0, 4)),
)


@given(st.lists(word_strategy, max_size=30))
def test_line_boxes_are_the_union_of_each_line(words: list[Word]):
    boxes = line_boxes(words)
    assert len(boxes) == len(words)
    for word, box in zip(words, boxes, strict=True):
        assert contains_box(box, word.box_px)
        if word.line_id is None:
            assert box == word.box_px
            continue
        same_line = [w.box_px for w in words if w.line_id == word.line_id]
        assert all(b == box for w, b in zip(words, boxes, strict=True) if w.line_id == word.line_id)
        assert box == (
            min(b[0] for b in same_line),
            min(b[1] for b in same_line),
            max(b[2] for b in same_line),
            max(b[3] for b in same_line),
        )
