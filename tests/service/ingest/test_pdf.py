import pytest

from service.errors import CorruptFileError
from service.ingest.page import Word
from service.ingest.pdf import contiguous_runs, parse_bbox_layout, parse_pdfinfo, pixel_size, scale_words

PDFINFO = """Producer:        hand
Pages:           2
Encrypted:       no
Page    1 size:  612 x 792 pts (letter)
Page    1 rot:   0
Page    2 size:  595.276 x 841.89 pts (A4)
Page    2 rot:   270
File size:       859 bytes
"""

BBOX = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd"><html xmlns="http://www.w3.org/1999/xhtml">
<head></head><body><doc>
  <page width="612.000000" height="792.000000">
    <flow><block xMin="72" yMin="74" xMax="242" yMax="96">
      <line xMin="72" yMin="74" xMax="242" yMax="96">
        <word xMin="72" yMin="74.5" xMax="126" yMax="96">Hello</word>
        <word xMin="133" yMin="74.5" xMax="196" yMax="96">&amp;World</word>
      </line>
      <line xMin="72" yMin="100" xMax="100" yMax="110">
        <word xMin="72" yMin="100" xMax="100" yMax="110">x</word>
      </line>
    </block></flow>
    <flow><block xMin="72" yMin="183" xMax="162" yMax="194">
      <line xMin="72" yMin="183" xMax="162" yMax="194">
        <word xMin="72" yMin="183" xMax="112" yMax="194">Next</word>
      </line>
    </block></flow>
  </page>
  <page width="612.000000" height="792.000000"></page>
</doc></body></html>"""


def test_pdfinfo_gives_page_count_and_displayed_sizes():
    info = parse_pdfinfo(PDFINFO)
    assert info.page_count == 2
    assert info.sizes_pt == ((612.0, 792.0), (841.89, 595.276))  # page 2 is shown turned


def test_pdfinfo_up_to_a_page_gives_the_sizes_up_to_it_and_pages_without_an_area_are_corrupt():
    info = parse_pdfinfo(PDFINFO.replace("595.276 x 841.89", "0 x 0"), last=1)
    assert (info.page_count, info.sizes_pt, info.size_pt(0)) == (2, ((612.0, 792.0),), (612.0, 792.0))
    info = parse_pdfinfo(PDFINFO.replace("595.276 x 841.89", "0 x 0"))
    with pytest.raises(CorruptFileError, match="page 2 of the PDF has no size"):
        info.size_pt(1)


@pytest.mark.parametrize("text", ["", "Pages: 2\nPage    1 size:  612 x 792 pts\n", "Pages: 0\n"])
def test_pdfinfo_without_pages_or_sizes_is_corrupt(text: str):
    with pytest.raises(CorruptFileError):
        parse_pdfinfo(text)


def test_bbox_layout_gives_words_lines_and_blocks_per_page():
    first, second = parse_bbox_layout(BBOX)
    assert [(w.text, w.line_id, w.block_id) for w in first] == [
        ("Hello", 0, 0),
        ("&World", 0, 0),
        ("x", 1, 0),
        ("Next", 2, 1),
    ]
    assert first[0].box_px == (72.0, 74.5, 126.0, 96.0) and first[0].confidence == 1.0
    assert second == []


def test_bbox_layout_that_does_not_parse_is_a_value_error():
    with pytest.raises(ValueError, match="does not parse"):
        parse_bbox_layout("<html><page>\x01</html>")


def test_scale_words_maps_points_to_pixels_and_clamps():
    words = [Word("a", (72.0, 36.0, 144.0, 72.0), 1.0, 0, 0), Word("b", (600.0, 780.0, 620.0, 800.0))]
    scaled = scale_words(words, 200 / 72, 200 / 72, 1700, 2200)
    assert scaled[0].box_px == (200.0, 100.0, 400.0, 200.0) and scaled[0].line_id == 0
    assert scaled[1].box_px == (1667.0, 2167.0, 1700.0, 2200.0)


def test_pixel_size_and_contiguous_runs():
    assert pixel_size((612, 792), 200) == (1700, 2200)
    assert pixel_size((0.1, 0.1), 72) == (1, 1)
    assert contiguous_runs([0, 1, 2, 4, 6, 7]) == [(0, 2), (4, 4), (6, 7)]
    assert contiguous_runs([]) == []
