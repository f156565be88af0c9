import json
import shutil
from pathlib import Path

import pytest

from model.funsd import (
    FUNSD_LABELS,
    FunsdFormatError,
    annotation_of,
    parse_annotation,
    read_dataset,
    read_document,
)


def test_reads_synthetic_dataset(synthetic_dataset: Path, synthetic_pages):
    documents = read_dataset(synthetic_dataset, labels=FUNSD_LABELS)
    assert [d.name for d in documents] == sorted(p.name for p in synthetic_pages)
    first = documents[0]
    page = next(p for p in synthetic_pages if p.name == first.name)
    assert (first.width, first.height) == page.image.size
    assert len(first.entities) == len(page.annotation["form"])
    assert first.entities[0].label == "header"
    assert first.links and all(isinstance(a, int) and isinstance(b, int) for a, b in first.links)
    # each link is stored on both ends in FUNSD files; the reader keeps one copy
    assert len(set(first.links)) == len(first.links)


@pytest.fixture
def one_document(tmp_path: Path, synthetic_dataset: Path) -> tuple[Path, dict]:
    """A copy of one synthetic document whose annotation a test can corrupt."""
    name = sorted(p.stem for p in (synthetic_dataset / "annotations").glob("*.json"))[0]
    for sub, suffix in (("images", ".png"), ("annotations", ".json")):
        (tmp_path / sub).mkdir()
        shutil.copy(synthetic_dataset / sub / f"{name}{suffix}", tmp_path / sub / f"{name}{suffix}")
    path = tmp_path / "annotations" / f"{name}.json"
    return path, json.loads(path.read_text())


def _write(path: Path, payload: object) -> Path:
    path.write_text(json.dumps(payload))
    return path


def _corrupt(annotation: dict, index: int, **changes: object) -> dict:
    annotation["form"][index].update(changes)
    return annotation


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a["form"][2].pop("label"), "missing keys ['label']"),
        (lambda a: _corrupt(a, 2, box=[10, 10, 5, 20]), "x1 < x0"),
        (lambda a: _corrupt(a, 2, box=[0, 0, 99999, 20]), "outside"),
        (lambda a: _corrupt(a, 2, box=[0, 0, 5]), "4 numbers"),
        (lambda a: a["form"][2]["words"][0].update(box=[0, 0, 10, -1]), "word 0 box"),
        (lambda a: _corrupt(a, 2, linking=[[2, 999]]), "unknown ids [999]"),
        (lambda a: _corrupt(a, 2, label="signature"), "not in the label set"),
        (lambda a: _corrupt(a, 2, id="two"), "must be an integer"),
        (lambda a: a["form"][2]["words"].append({"text": "x"}), "needs 'text' and 'box'"),
    ],
)
def test_errors_name_file_and_entity(one_document, change, message):
    path, annotation = one_document
    entity_id = annotation["form"][2]["id"]
    change(annotation)
    _write(path, annotation)
    with pytest.raises(FunsdFormatError) as info:
        read_document(path, labels=FUNSD_LABELS)
    text = str(info.value)
    assert message in text
    assert str(path) in text
    if "integer" not in message:
        assert f"entity {entity_id}" in text


def test_missing_image_is_an_error(one_document):
    path, _ = one_document
    (path.parent.parent / "images" / f"{path.stem}.png").unlink()
    with pytest.raises(FunsdFormatError, match="no image named"):
        read_document(path)


def test_invalid_json_is_an_error(one_document):
    path, _ = one_document
    path.write_text("{not json")
    with pytest.raises(FunsdFormatError, match="cannot read JSON") as info:
        read_document(path)
    assert info.value.path == path


def test_duplicate_ids_and_missing_form(one_document):
    path, annotation = one_document
    annotation["form"][1]["id"] = annotation["form"][0]["id"]
    _write(path, annotation)
    with pytest.raises(FunsdFormatError, match="duplicate entity id"):
        read_document(path)
    _write(path, {"entities": []})
    with pytest.raises(FunsdFormatError, match="'form' list"):
        read_document(path)


def test_user_labels_are_accepted_without_a_label_set(one_document):
    path, annotation = one_document
    _write(path, _corrupt(annotation, 2, label="invoice_number"))
    assert "invoice_number" in read_document(path).labels


def test_dataset_folder_errors(tmp_path: Path):
    with pytest.raises(FunsdFormatError, match="no 'annotations' folder"):
        read_dataset(tmp_path)
    (tmp_path / "annotations").mkdir()
    with pytest.raises(FunsdFormatError, match=r"no \*\.json"):
        read_dataset(tmp_path)


def test_annotation_of_is_what_the_reader_reads_back(synthetic_dataset: Path):
    for document in read_dataset(synthetic_dataset):
        path = synthetic_dataset / "annotations" / f"{document.name}.json"
        size = (document.width, document.height)
        again = parse_annotation(annotation_of(document), path, document.image_path, size)
        assert again == document
        assert document.links  # the fixture's forms have links, so the linking lists are exercised
