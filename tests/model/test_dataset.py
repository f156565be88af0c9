from pathlib import Path

import numpy as np

from model.boxes import normalize_box
from model.config import FUNSD_ENTITY_LABELS, LabelSet
from model.dataset import document_example, ordered_tags, relation_schema, split_validation
from model.funsd import Document, Entity, read_dataset

LABELS = LabelSet(FUNSD_ENTITY_LABELS)


def test_ordered_tags_begin_each_entity_where_it_is_first_met():
    labels = ["question", "answer", "question", "other", "other", "answer"]
    assert ordered_tags(labels, [4, 7, 4, 1, 1, 7], LABELS) == [5, 1, 6, 0, 0, 2]
    assert ordered_tags([], [], LABELS) == []


def test_annotation_order_follows_entities_and_uses_word_boxes(synthetic_dataset: Path):
    document = read_dataset(synthetic_dataset)[0]
    example = document_example(document, LABELS, "annotation", "word")
    words = [w for e in document.entities for w in e.words]
    assert example.words == [w.text for w in words]
    expected = [normalize_box(w.box_px, document.width, document.height) for w in words]
    assert example.boxes.tolist() == [list(b) for b in expected]
    first = document.entities[0]
    assert example.tags[0] == LABELS.begin_tag(first.label)


def test_reading_order_is_a_permutation_top_to_bottom(synthetic_dataset: Path):
    document = read_dataset(synthetic_dataset)[1]
    annotation = document_example(document, LABELS, "annotation", "word")
    reading = document_example(document, LABELS, "reading", "word")
    assert sorted(reading.words) == sorted(annotation.words)
    assert np.all(np.diff(reading.boxes[:, 1]) > -15)  # lines go down the page
    # every word keeps its own tag and entity
    pairs = sorted(
        zip(annotation.entity_ids.tolist(), annotation.words, annotation.tags.tolist(), strict=True)
    )
    assert pairs == sorted(
        zip(reading.entity_ids.tolist(), reading.words, reading.tags.tolist(), strict=True)
    )


def test_line_boxes_cover_the_word_boxes_and_never_come_from_entities(synthetic_dataset: Path):
    document = read_dataset(synthetic_dataset)[0]
    words = document_example(document, LABELS, "annotation", "word")
    lines = document_example(document, LABELS, "annotation", "line")
    assert np.all(lines.boxes[:, :2] <= words.boxes[:, :2]) and np.all(
        lines.boxes[:, 2:] >= words.boxes[:, 2:]
    )
    assert not np.array_equal(lines.boxes, words.boxes)
    # a table header row is one line holding several entities: its line box spans all of them
    assert len({tuple(b) for b in lines.boxes.tolist()}) < len({tuple(b) for b in words.boxes.tolist()})


def test_split_validation_is_seeded_and_disjoint():
    names = [f"doc{i}" for i in range(20)]
    train, val = split_validation(names, 0.1, seed=3)
    assert (train, val) == split_validation(names, 0.1, seed=3)
    assert len(val) == 2 and not set(train) & set(val) and sorted(train + val) == list(range(20))
    assert split_validation(["one"], 0.5, 0) == ([0], [])


def test_relation_schema_keeps_the_linked_label_pairs_of_known_labels():
    def entity(entity_id: int, label: str) -> Entity:
        return Entity(entity_id, label, "x", (0, 0, 1, 1), ())

    entities = (entity(0, "header"), entity(1, "question"), entity(2, "answer"), entity(3, "date"))
    links = ((0, 1), (1, 2), (1, 3))  # "date" is not in the label set: its link is not a schema pair
    document = Document("d", Path("d.png"), 10, 10, entities, links)
    schema = relation_schema([document], LabelSet(("header", "question", "answer")))
    assert schema is not None and set(schema.pairs) == {("header", "question"), ("question", "answer")}
    unlinked = Document("u", Path("u.png"), 10, 10, entities, ())
    assert relation_schema([unlinked], LabelSet(("header", "question", "answer"))) is None
