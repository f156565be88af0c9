import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.artifact import InputOptions
from model.boxes import group_lines, reading_order
from model.dataset import document_example
from model.decode import best_bio_tags, bio_spans, log_softmax, tags_to_strings
from model.features import SpecialTokens, load_tokenizer
from model.funsd import Document, read_dataset
from model.onnx_meta import OnnxMeta
from model.relation_batch import span_entity_group
from model.runtime import (
    PagePrediction,
    PageWords,
    Runtime,
    model_inputs,
    ocr_line_rows,
    validate_page,
    window_batches,
)
from model.train.checkpoint import load_model
from model.train.evaluate import encode_page, page_links, predict_word_logits, predict_words
from tests.exported import ExportedModel


@pytest.fixture(scope="module")
def documents(synthetic_dataset: Path) -> list[Document]:
    return read_dataset(synthetic_dataset)


@pytest.fixture(scope="module")
def torch_model(exported_model: ExportedModel):
    return load_model(exported_model.model_dir)


@pytest.fixture(scope="module")
def fp32_runtime(exported_model: ExportedModel) -> Runtime:
    return Runtime.load(exported_model.onnx_dir, "fp32", threads=1)


def page_words(document: Document, image: bool = True, permutation: list[int] | None = None) -> PageWords:
    """The document's words as the runtime gets them (empty words dropped, as in training)."""
    words = [w for entity in document.entities for w in entity.words if w.text.strip()]
    if permutation is not None:
        words = [words[i] for i in permutation]
    picture = Image.open(document.image_path).convert("RGB") if image else None
    return PageWords(
        [w.text for w in words], [w.box_px for w in words], document.width, document.height, picture
    )


def with_inputs(runtime: Runtime, **changes) -> Runtime:
    """The same session and weights, with other input options in its metadata."""
    model = dict(runtime.meta.model)
    model["inputs"] = {**model["inputs"], **changes}
    meta = replace(runtime.meta, model=model)
    return Runtime(runtime.session, meta, runtime.tokenizer, runtime.batch_windows)


def torch_tags(torch_model, document: Document, inputs: InputOptions, tokenizer) -> np.ndarray:
    """Tags of the torch path in the model's word order."""
    model, meta = torch_model
    example = document_example(document, meta.label_set, inputs.word_order, inputs.box_level)
    page = encode_page(example, tokenizer, inputs, meta.config.image_size)
    logits = predict_word_logits(model, page, SpecialTokens.of(tokenizer).pad)
    return best_bio_tags(log_softmax(logits), meta.label_set)


def caller_order(page: PageWords, inputs: InputOptions) -> list[int]:
    if inputs.word_order == "annotation":
        return list(range(len(page.words)))
    return reading_order(page.boxes_px, group_lines(page.boxes_px))


@pytest.mark.parametrize(
    "inputs",
    [InputOptions(), InputOptions(box_level="line"), InputOptions(word_order="annotation", box_level="line")],
    ids=["reading-word", "reading-line", "annotation-line"],
)
def test_runtime_tags_equal_the_torch_path(fp32_runtime, torch_model, documents, inputs):
    runtime = with_inputs(fp32_runtime, word_order=inputs.word_order, box_level=inputs.box_level)
    pages = [page_words(d) for d in documents]
    predictions = runtime.predict_pages(pages)
    for document, page, prediction in zip(documents, pages, predictions, strict=True):
        expected = torch_tags(torch_model, document, inputs, runtime.tokenizer)
        order = caller_order(page, inputs)
        tag_names = runtime.label_set.tags
        assert [prediction.tags[i] for i in order] == [tag_names[t] for t in expected]


def test_runtime_relations_equal_the_torch_path(fp32_runtime, torch_model, documents):
    """Links between predicted entities: the same candidates, geometry and selection as the torch path."""
    model, meta = torch_model
    tokenizer = fp32_runtime.tokenizer
    found = 0
    for document, prediction in zip(
        documents, fp32_runtime.predict_pages([page_words(d) for d in documents]), strict=True
    ):
        example = document_example(document, meta.label_set, meta.inputs.word_order, meta.inputs.box_level)
        page = encode_page(example, tokenizer, meta.inputs, meta.config.image_size)
        logits, states = predict_words(model, page, SpecialTokens.of(tokenizer).pad)
        spans = bio_spans(tags_to_strings(best_bio_tags(log_softmax(logits), meta.label_set), meta.label_set))
        expected = page_links(
            model, states, span_entity_group(spans, example.boxes, meta.label_set), meta, 0.5
        )
        assert {(r.head, r.tail) for r in prediction.relations} == expected
        for relation in prediction.relations:
            head, tail = prediction.entities[relation.head], prediction.entities[relation.tail]
            assert (head.label, tail.label) in meta.relation_schema.pairs and 0.5 <= relation.confidence <= 1
        found += len(prediction.relations)
    assert found > 0


def test_the_trained_model_finds_entities_and_int8_agrees(exported_model, fp32_runtime, documents):
    int8 = Runtime.load(exported_model.onnx_dir, "int8", threads=1)
    pages = [page_words(d) for d in documents[:2]]
    full, quantised = fp32_runtime.predict_pages(pages), int8.predict_pages(pages)
    for a, b in zip(full, quantised, strict=True):
        assert a.entities and all(0.0 < e.confidence <= 1.0 for e in a.entities)
        assert np.mean([x == y for x, y in zip(a.tags, b.tags, strict=True)]) >= 0.95


def test_int8_results_do_not_depend_on_the_other_pages_of_a_call(exported_model, documents):
    int8 = Runtime.load(exported_model.onnx_dir, "int8", threads=1)
    assert int8.batch_windows == 1
    pages = [page_words(d, image=False) for d in documents]
    assert int8.predict_pages(pages) == [int8.predict_pages([page])[0] for page in pages]


def test_entities_map_back_to_the_callers_word_ids_when_words_are_shuffled(fp32_runtime, documents):
    ordered = page_words(documents[0])
    permutation = np.random.default_rng(7).permutation(len(ordered.words)).tolist()
    shuffled = page_words(documents[0], permutation=permutation)
    first, second = fp32_runtime.predict_pages([ordered, shuffled])
    assert [second.tags[j] for j in range(len(permutation))] == [first.tags[i] for i in permutation]
    assert second.scores == pytest.approx([first.scores[i] for i in permutation], abs=1e-5)
    as_original = [(e.label, tuple(permutation[i] for i in e.word_ids)) for e in second.entities]
    assert as_original == [(e.label, e.word_ids) for e in first.entities]
    for entity in second.entities:
        assert all(second.tags[i].endswith(f"-{entity.label}") for i in entity.word_ids)
        assert shuffled.words[entity.word_ids[0]] == ordered.words[permutation[entity.word_ids[0]]]


def test_a_page_without_words_gives_an_empty_prediction(fp32_runtime, documents):
    empty = PageWords([], [], 800, 1000)
    results = fp32_runtime.predict_pages([empty, page_words(documents[1]), empty])
    assert results[0] == results[2] == PagePrediction((), (), ())
    assert len(results[1].tags) == len(page_words(documents[1]).words)
    assert fp32_runtime.predict_pages([empty]) == [PagePrediction((), (), ())]


def test_a_long_page_in_many_windows_labels_every_word(fp32_runtime, torch_model):
    runtime = replace_batch(with_inputs(fp32_runtime, max_tokens=128, overlap_tokens=32), 3)
    count = 700
    boxes = [[i % 900, 10 * (i // 10) + 5, i % 900 + 50, 10 * (i // 10) + 12] for i in range(count)]
    page = PageWords([f"word{i % 37}" for i in range(count)], boxes, 1000, 7200)
    (prepared,) = runtime.prepare([page])
    assert len(prepared.windows) > 5 and len(window_batches([prepared], 3)) > 1
    (prediction,) = runtime.run_prepared([prepared])
    assert len(prediction.tags) == count and all(prediction.tags)
    assert all(0.0 < s <= 1.0 for s in prediction.scores)


def replace_batch(runtime: Runtime, batch_windows: int) -> Runtime:
    return Runtime(runtime.session, runtime.meta, runtime.tokenizer, batch_windows)


def test_windows_of_several_pages_share_bounded_batches(fp32_runtime, documents):
    prepared = fp32_runtime.prepare([page_words(d) for d in documents])
    batches = window_batches(prepared, 3)
    assert all(len(b) <= 3 for b in batches) and len(batches) > 1
    assert sum(map(len, batches)) == sum(len(p.windows) for p in prepared)
    one_by_one = [fp32_runtime.run_prepared([p])[0] for p in prepared]
    for batched, alone in zip(replace_batch(fp32_runtime, 3).run_prepared(prepared), one_by_one, strict=True):
        assert batched.tags == alone.tags and batched.scores == pytest.approx(alone.scores, abs=1e-5)
        assert [(e.label, e.word_ids) for e in batched.entities] == [
            (e.label, e.word_ids) for e in alone.entities
        ]


def test_given_line_ids_group_words_like_geometric_lines(fp32_runtime, documents):
    page = page_words(documents[2])
    lines = group_lines(page.boxes_px)
    scrambled = [1000 - 7 * line for line in lines]  # other numbers, same grouping
    runtime = with_inputs(fp32_runtime, box_level="line")
    plain, given = runtime.predict_pages([page, replace(page, line_ids=scrambled)])
    assert plain.tags == given.tags


def test_ocr_lines_side_by_side_form_one_row_numbered_top_to_bottom():
    boxes = [(0, 50, 10, 60), (20, 52, 30, 61), (0, 10, 10, 20), (300, 48, 350, 58), (0, 90, 5, 99)]
    assert ocr_line_rows(boxes, [7, 7, 3, 1, 5]) == [1, 1, 0, 1, 2]


def test_a_value_ocr_put_in_an_earlier_line_is_still_read_after_its_key():
    key, value = [(10, 102, 60, 120), (70, 100, 110, 120)], [(300, 98, 380, 118)]
    page = PageWords(["Name", "here:", "John"], [*key, *value], 1000, 1000, line_ids=[4, 4, 0])
    order, boxes = model_inputs(page, InputOptions(box_level="line"))
    assert order == [0, 1, 2]
    assert boxes.tolist() == [[10, 98, 380, 120]] * 3


@pytest.mark.parametrize(
    ("page", "message"),
    [
        (PageWords(["a", "b"], [(0, 0, 1, 1)], 10, 10), "2 words need 2 boxes"),
        (PageWords(["a"], [(0, 0, 1)], 10, 10), "boxes of 4 numbers"),
        (PageWords(["a"], [(0, 0, float("nan"), 1)], 10, 10), "finite"),
        (PageWords(["a"], [(0, 0, 1, 1)], 0, 10), "page size"),
        (PageWords(["a"], [(0, 0, 1, 1)], 10, 10, line_ids=[1, 2]), "line ids"),
        (PageWords([3], [(0, 0, 1, 1)], 10, 10), "strings"),
    ],
)
def test_bad_pages_are_refused(page, message):
    with pytest.raises(ValueError, match=message):
        validate_page(page)


def test_prepare_names_the_bad_page(fp32_runtime, documents):
    with pytest.raises(ValueError, match="page 1: page size"):
        fp32_runtime.prepare([page_words(documents[0]), PageWords(["a"], [(0, 0, 1, 1)], 10, -1)])


def test_a_tokenizer_that_does_not_match_is_refused(exported_model: ExportedModel, tmp_path: Path):
    copy = shutil.copytree(exported_model.onnx_dir, tmp_path / "onnx")
    data = json.loads((copy / "onnx.json").read_text())
    data["model"]["vocab_sha256"] = "0" * 64
    (copy / "onnx.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="vocab_sha256"):
        Runtime.load(copy)


def test_a_missing_variant_is_refused(exported_model: ExportedModel, tmp_path: Path):
    copy = shutil.copytree(exported_model.onnx_dir, tmp_path / "onnx")
    meta = OnnxMeta.load(copy)
    replace(meta, variants={"fp32": meta.variants["fp32"]}).save(copy)
    with pytest.raises(ValueError, match="no 'int8' variant"):
        Runtime.load(copy, "int8")


def test_the_runtime_tokenizer_matches_the_artifacts(exported_model: ExportedModel, fp32_runtime):
    tokenizer = load_tokenizer(exported_model.onnx_dir / "tokenizer.json")
    assert fp32_runtime.tokenizer.get_vocab() == tokenizer.get_vocab()
    assert fp32_runtime.tokenizer.truncation is None and fp32_runtime.tokenizer.padding is None
