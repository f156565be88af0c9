"""The tesseract command: its answers parsed, real recognition and orientation on rendered pages, errors."""

import pytest
from PIL import Image

from service.ingest import tesseract
from service.ingest.tesseract import (
    TesseractError,
    TesseractTimeoutError,
    installed_languages,
    orientation,
    parse_osd,
    parse_tsv,
    pnm_bytes,
    recognise,
)
from tests.fixtures.forms import SyntheticPage

TSV = (
    "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
    "1\t1\t0\t0\t0\t0\t0\t0\t600\t200\t-1\t\n"
    "5\t1\t1\t1\t1\t1\t20\t30\t60\t18\t96.5\tTO:\n"
    "5\t1\t1\t1\t1\t2\t90\t30\t80\t18\t91\tGeorge\n"
)


def test_tsv_rows_become_columns():
    columns = parse_tsv(TSV)
    assert columns["text"] == ["", "TO:", "George"]
    assert columns["conf"] == ["-1", "96.5", "91"] and columns["left"] == ["0", "20", "90"]
    assert parse_tsv("")["text"] == []


def test_osd_answer_is_parsed():
    text = "Page number: 0\nOrientation in degrees: 270\nRotate: 90\nOrientation confidence: 4.2\n"
    assert parse_osd(text) == {"rotate": 90.0, "orientation_conf": 4.2}
    assert parse_osd("Rotate: x\n") == {}


@pytest.mark.parametrize("mode", ["1", "L", "RGB", "RGBA", "P", "I;16", "LA"])
def test_every_image_mode_goes_in_as_pnm(mode: str):
    data = pnm_bytes(Image.new(mode, (5, 3)))
    assert data[:2] in (b"P4", b"P5", b"P6") and Image.open(__import__("io").BytesIO(data)).size == (5, 3)


def test_real_tesseract_reads_a_rendered_page(synthetic_pages: list[SyntheticPage]):
    page = synthetic_pages[0]
    found = {word.strip() for word in recognise(page.image, "eng", 3, 100, 120.0)["text"]}
    expected = [w["text"] for e in page.annotation["form"] for w in e["words"]]
    assert sum(word in found for word in expected) / len(expected) >= 0.8


def test_orientation_of_a_page_turned_on_its_side(synthetic_pages: list[SyntheticPage]):
    turned = synthetic_pages[0].image.rotate(90, expand=True)
    answer = orientation(turned, 100, 120.0)
    assert answer["rotate"] in (90.0, 270.0) and answer["orientation_conf"] > 0


def test_errors_are_typed(monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(TesseractError, match="Too few characters"):
        orientation(Image.new("L", (40, 40), 255), 100, 60.0)
    with pytest.raises(TesseractTimeoutError):
        recognise(Image.new("L", (2000, 2000), 128), "eng", 11, 300, 0.001)
    with pytest.raises(TesseractError):
        recognise(Image.new("L", (40, 40), 255), "xx-not-a-language", 3, 100, 60.0)
    monkeypatch.setattr(tesseract, "TESSERACT", "/nonexistent/tesseract")
    with pytest.raises(tesseract.TesseractNotFoundError, match="tesseract-ocr"):
        recognise(Image.new("L", (40, 40), 255), "eng", 3, 100, 60.0)


def test_installed_languages_are_read_from_the_binary():
    assert {"eng", "osd"} <= installed_languages()
