import subprocess
from pathlib import Path

import pytest
from PIL import Image

from model.boxes import contains_box, is_valid_box
from model.funsd import FUNSD_LABELS, read_dataset
from model.synthetic import find_font, page_boxes, render_form, write_pdf, write_tiff
from service.tesseract import recognise


def test_same_seed_gives_the_same_page():
    a, b = render_form(7), render_form(7)
    assert a.annotation == b.annotation
    assert a.image.tobytes() == b.image.tobytes()
    assert render_form(8).annotation != a.annotation


def test_annotations_are_consistent(synthetic_pages):
    for page in synthetic_pages:
        width, height = page.image.size
        entities = page.annotation["form"]
        ids = {e["id"] for e in entities}
        for entity in entities:
            assert entity["label"] in FUNSD_LABELS
            assert entity["words"], entity
            assert is_valid_box(entity["box"], width, height)
            assert entity["text"] == " ".join(w["text"] for w in entity["words"])
            for word in entity["words"]:
                assert word["text"].strip()
                assert contains_box(entity["box"], word["box"])
            for head, tail in entity["linking"]:
                assert {head, tail} <= ids and entity["id"] in (head, tail)
                labels = (entities[head]["label"], entities[tail]["label"])
                assert labels in {("question", "answer"), ("header", "question")}


def test_written_dataset_passes_the_reader(synthetic_dataset: Path, synthetic_pages):
    documents = read_dataset(synthetic_dataset, labels=FUNSD_LABELS)
    assert sum(len(d.entities) for d in documents) == sum(len(p.annotation["form"]) for p in synthetic_pages)


def _answer_positions(pages) -> set[str]:
    """Where answers sit relative to their question: 'right' (same line) or 'below'."""
    positions = set()
    for page in pages:
        entities = page.annotation["form"]
        for entity in entities:
            for head, tail in entity["linking"]:
                question, answer = entities[head], entities[tail]
                if question["label"] != "question" or entity is not question:
                    continue
                if answer["box"][1] >= question["box"][3]:
                    positions.add("below")
                elif answer["box"][0] > question["box"][2]:
                    positions.add("right")
    return positions


def test_layouts_and_fonts_vary_across_a_sample():
    pages = [render_form(seed) for seed in range(12)]
    assert _answer_positions(pages) == {"right", "below"}
    labels = {e["label"] for p in pages for e in p.annotation["form"]}
    assert labels == FUNSD_LABELS
    # tables: one column key linked to several answers
    assert any(
        sum(1 for link in e["linking"] if link[0] == e["id"]) > 1 for p in pages for e in p.annotation["form"]
    )
    header_heights = {p.annotation["form"][0]["box"][3] - p.annotation["form"][0]["box"][1] for p in pages}
    assert len(header_heights) >= 3
    assert (
        len({p.image.size for p in pages}) == 1 and len({p.annotation["form"][0]["text"] for p in pages}) >= 3
    )


def test_multi_word_values_exist():
    pages = [render_form(seed) for seed in range(4)]
    assert any(len(e["words"]) >= 3 for p in pages for e in p.annotation["form"] if e["label"] == "answer")


def test_pdf_has_one_page_per_image(tmp_path: Path, synthetic_pages):
    path = write_pdf([p.image for p in synthetic_pages[:3]], tmp_path / "form.pdf")
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Pages:           3" in info


def test_tiff_has_one_frame_per_image(tmp_path: Path, synthetic_pages):
    path = write_tiff([p.image for p in synthetic_pages[:3]], tmp_path / "form.tiff")
    with Image.open(path) as image:
        assert image.n_frames == 3
        image.seek(2)
        assert image.size == synthetic_pages[2].image.size


def test_tesseract_reads_the_rendered_words(synthetic_pages):
    page = synthetic_pages[0]
    found = {word.strip() for word in recognise(page.image, "eng", 3, 100, 120.0)["text"]}
    expected = [w["text"] for e in page.annotation["form"] for w in e["words"]]
    recall = sum(1 for word in expected if word in found) / len(expected)
    assert recall >= 0.8, recall
    assert len(page_boxes(page)) == len(expected)


def test_missing_font_names_the_package():
    with pytest.raises(FileNotFoundError, match="fonts-dejavu-core"):
        find_font("NoSuchFont.ttf")
