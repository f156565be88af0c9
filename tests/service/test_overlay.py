from io import BytesIO

import numpy as np
from PIL import Image

from service.overlay import (
    ARROW_COLOUR,
    PALETTE,
    arrow_head,
    box_edge_point,
    label_colour,
    legend_labels,
    overlay_png,
    render_overlay,
)
from service.schemas import ExtractedEntity, ExtractedRelation, PageResult


def entity(index: int, label: str, box: list[int]) -> ExtractedEntity:
    return ExtractedEntity(id=index, label=label, text=label, box=box, word_ids=[index], confidence=0.9)


def form_page() -> PageResult:
    entities = [
        entity(0, "header", [300, 40, 560, 80]),
        entity(1, "question", [60, 200, 200, 230]),
        entity(2, "answer", [320, 200, 520, 230]),
        entity(3, "other", [60, 500, 400, 530]),
        entity(4, "invoice_total", [60, 700, 300, 730]),
    ]
    relations = [ExtractedRelation(head=1, tail=2, confidence=0.8)]
    return PageResult(page=1, width=850, height=1100, entities=entities, relations=relations)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def count_colour(array: np.ndarray, colour: tuple[int, int, int], tolerance: int = 0) -> int:
    return int((np.abs(array - np.asarray(colour)).max(axis=-1) <= tolerance).sum())


def test_fixed_palette_and_deterministic_colours_for_other_labels():
    assert label_colour("question") == PALETTE["question"]
    assert label_colour("invoice_total") == label_colour("invoice_total")
    assert label_colour("invoice_total") != label_colour("invoice_date")
    assert label_colour("invoice_total") not in PALETTE.values()


def test_legend_lists_funsd_labels_first_then_the_others_sorted():
    page = form_page()
    extra = [*page.entities, entity(5, "a_label", [0, 0, 1, 1])]
    assert legend_labels(extra) == ["header", "question", "answer", "other", "a_label", "invoice_total"]


def test_every_label_colour_and_the_arrow_are_drawn():
    page = form_page()
    image = render_overlay(Image.new("L", (850, 1100), 255), page)
    assert image.size == (850, 1100) and image.mode == "RGB"
    array = pixels(image)
    for label in ("header", "question", "answer", "other", "invoice_total"):
        assert count_colour(array, label_colour(label)) > 50, label
    arrow = array[200:231, 201:320]  # between the question's and the answer's boxes
    assert count_colour(arrow, ARROW_COLOUR) > 50


def test_legend_sits_in_the_top_right_corner():
    page = form_page()
    array = pixels(render_overlay(None, page))
    corner = array[:200, 600:]  # no entity box reaches into this corner except the legend's swatches
    for label in ("header", "question", "answer", "other", "invoice_total"):
        assert count_colour(corner, label_colour(label)) > 20, label
    assert count_colour(corner, ARROW_COLOUR) > 20  # the "key -> value" swatch


def test_no_arrow_without_relations_and_a_blank_page_stays_blank():
    page = form_page().model_copy(update={"relations": []})
    assert count_colour(pixels(render_overlay(None, page)), ARROW_COLOUR) == 0
    empty = PageResult(page=1, width=100, height=80, status="failed", error="OCR failed")
    assert (pixels(render_overlay(None, empty)) == 255).all()


def test_relations_to_unknown_entities_are_ignored():
    page = form_page().model_copy(update={"relations": [ExtractedRelation(head=1, tail=9, confidence=0.5)]})
    render_overlay(None, page)  # does not raise


def test_overlay_png_decodes_to_the_page_size():
    page = form_page()
    with Image.open(BytesIO(overlay_png(Image.new("RGB", (850, 1100), "white"), page))) as image:
        assert image.format == "PNG" and image.size == (850, 1100)


def test_arrow_geometry():
    assert box_edge_point([0, 0, 10, 10], (100, 5)) == (10, 5)
    assert box_edge_point([0, 0, 10, 10], (5, -50)) == (5, 0)
    tip, left, right = arrow_head((0, 0), (10, 0), size=4)
    assert tip == (10, 0) and left[0] < 10 and right[0] < 10 and left[1] == -right[1]
