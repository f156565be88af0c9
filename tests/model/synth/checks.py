"""Validity checks of a generated page, shared by the synth tests."""

from pathlib import Path

from model.boxes import contains_box
from model.funsd import parse_annotation
from model.synth.page import SynthPage
from model.synth.schema import get_schema


def check_page(page: SynthPage, schema_name: str = "funsd") -> None:
    """FUNSD-valid for the schema's labels; words inside their entity; links between sensible labels."""
    schema = get_schema(schema_name)
    path = Path(f"{page.name}.json")
    document = parse_annotation(
        page.annotation, path, Path(f"{page.name}.png"), page.image.size, schema.labels
    )
    assert document.entities, page.name
    labels = {e.id: e.label for e in document.entities}
    for entity in document.entities:
        assert entity.words and entity.text, (page.name, entity.id)
        for word in entity.words:
            assert word.text.strip(), (page.name, entity.id)
            assert word.box_px[2] > word.box_px[0] and word.box_px[3] > word.box_px[1], (page.name, entity.id)
            assert contains_box(entity.box_px, word.box_px), (page.name, entity.id, word)
    for head, tail in document.links:
        assert schema.keeps_link(labels[head], labels[tail]), (page.name, labels[head], labels[tail])
