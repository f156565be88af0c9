"""The extraction pipeline end to end with real tesseract and a tiny model trained and exported here."""

import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from model.boxes import union_box
from model.config import tiny_config
from model.funsd import read_dataset
from model.runtime import Runtime
from model.train.minilm import minilm_tokenizer_path
from model.train.trainer import TrainOptions, prepare_trainer
from service import pipeline
from service.cli.app import app
from service.errors import DocumentTimeoutError, PageSelectionError, UnsupportedFormatError
from service.ingest import load, ocr, tesseract
from service.ingest.load import DocumentSource
from service.overlay import ARROW_COLOUR, label_colour, render_overlay
from service.pipeline import (
    effective_settings,
    extract_document,
    int_box,
    key_values,
    run_pipeline,
)
from service.registry import serving_model_dir
from service.schemas import (
    ExtractedEntity,
    ExtractedRelation,
    ExtractionResult,
    ExtractOptions,
    PageResult,
)
from service.settings import Settings, get_settings
from tests.fixtures.fake_pdf import make_pdf, text_page
from tests.fixtures.forms import SyntheticPage, write_funsd_dataset, write_pdf, write_tiff

SETTINGS = Settings(ocr_quality="fast", ocr_detect_orientation=False, ocr_workers=1)
TINY_OPTIONS = TrainOptions(
    epochs=15, batch_size=1, lr=5e-3, lr_new=5e-3, warmup_ratio=0.05, validation_fraction=0.0, init="random"
)
runner = CliRunner()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_pages: list[SyntheticPage]) -> Path:
    """A tiny model overfitted on two synthetic forms (FUNSD labels), as `docextract train` saves it."""
    data = write_funsd_dataset(synthetic_pages[:2], tmp_path_factory.mktemp("train-data"))
    out = tmp_path_factory.mktemp("tiny-run")
    config = tiny_config().with_changes(hidden_dropout=0.0, attention_dropout=0.0)
    prepare_trainer(read_dataset(data), out, TINY_OPTIONS, config, minilm_tokenizer_path()).run()
    return out / "best"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def serving_dir(trained_dir: Path, data_dir: Path) -> Path:
    """The trained model exported to ONNX by `serving_model_dir` (what the CLI does on first use)."""
    return serving_model_dir(SETTINGS.model_copy(update={"data_dir": data_dir}), trained_dir)


@pytest.fixture(scope="module")
def runtime(serving_dir: Path) -> Runtime:
    return Runtime.load(serving_dir, variant="int8", threads=1)


def check_consistent(result: ExtractionResult) -> None:
    """Word ids are indices, boxes lie on the page, entities are made of their words."""
    for page in result.pages:
        assert [w.id for w in page.words] == list(range(len(page.words)))
        for word in page.words:
            x0, y0, x1, y1 = word.box
            assert 0 <= x0 <= x1 <= page.width and 0 <= y0 <= y1 <= page.height
        for number, entity in enumerate(page.entities):
            words = [page.words[i] for i in entity.word_ids]
            assert entity.id == number and words and 0 <= entity.confidence <= 1
            assert entity.text == " ".join(w.text for w in words)
            assert entity.box == [int(v) for v in union_box(w.box for w in words)]


# --- images, PDF, TIFF, JSON -----------------------------------------------------------------------------


def test_png_form_gives_words_entities_and_timings(synthetic_pages: list[SyntheticPage], runtime: Runtime):
    data = png(synthetic_pages[0].image)
    result = extract_document(data, ExtractOptions(), SETTINGS, runtime)
    assert result.document_id == hashlib.sha256(data).hexdigest()
    assert result.model.labels == ["answer", "header", "question"] and result.model.id.startswith("model-")
    (page,) = result.pages
    assert (page.page, page.width, page.height, page.status, page.error) == (1, 850, 1100, "ok", None)
    assert len(page.words) > 50 and len(page.entities) > 5
    assert {e.label for e in page.entities} <= {"answer", "header", "question"}
    # the tiny model has a relation head: links join existing entities and become key-value pairs
    entity_ids = {e.id for e in page.entities}
    assert all({r.head, r.tail} <= entity_ids for r in page.relations)
    assert len(result.key_values) <= len(page.relations)
    assert all(kv.page == 1 and kv.key and kv.value for kv in result.key_values)
    check_consistent(result)
    timings = result.timings_ms
    assert timings.ocr > 0 and timings.model > 0 and timings.decode > 0 and timings.postprocess > 0
    assert timings.total >= timings.decode + timings.ocr + timings.model + timings.postprocess - 0.5


def test_the_model_finds_the_forms_header(synthetic_pages: list[SyntheticPage], runtime: Runtime):
    result = extract_document(png(synthetic_pages[0].image), ExtractOptions(), SETTINGS, runtime)
    truth = synthetic_pages[0].annotation["form"][0]
    assert truth["label"] == "header"
    headers = [e.text for e in result.pages[0].entities if e.label == "header"]
    assert truth["text"] in headers


def test_multi_page_pdf_with_page_selection_and_dpi(
    tmp_path: Path, synthetic_pages: list[SyntheticPage], runtime: Runtime
):
    data = write_pdf([p.image for p in synthetic_pages[:3]], tmp_path / "three.pdf", dpi=100).read_bytes()
    result = extract_document(data, ExtractOptions(pages="1,3", dpi=100), SETTINGS, runtime)
    assert [p.page for p in result.pages] == [1, 3]
    assert all(p.status == "ok" and (p.width, p.height) == (850, 1100) and p.entities for p in result.pages)
    check_consistent(result)


def test_a_long_pdf_goes_through_a_few_pages_at_a_time(runtime: Runtime, monkeypatch: pytest.MonkeyPatch):
    """The format, page count and selection are read once; then PAGES_PER_CHUNK pages at a time."""
    count = pipeline.PAGES_PER_CHUNK * 2 + 3
    data = make_pdf(
        [text_page([f"Name: person {n}", f"Invoice: {1000 + n}", "Date: 2024-01-02"]) for n in range(count)]
    )
    loaded: list[int] = []
    detected: list[bytes] = []
    real_load, real_detect = DocumentSource.load, load.detect_format

    def counting_load(source: DocumentSource, indices: list[int] | None = None) -> list:
        pages = real_load(source, indices)
        loaded.append(len(pages))
        return pages

    def counting_detect(data: bytes) -> str:
        detected.append(data)
        return real_detect(data)

    monkeypatch.setattr(DocumentSource, "load", counting_load)
    monkeypatch.setattr(load, "detect_format", counting_detect)
    extraction = run_pipeline(data, ExtractOptions(pages=f"2-{count}"), SETTINGS, runtime, keep_images=False)
    assert loaded == [8, 8, count - 1 - 16]  # never more than PAGES_PER_CHUNK page images at once
    assert len(detected) == 1  # the format is detected once, not once per chunk
    pages = extraction.result.pages
    assert [page.page for page in pages] == list(range(2, count + 1))
    assert [page.words[4].text for page in pages] == [str(1000 + n) for n in range(1, count)]  # in order
    assert all(page.entities for page in pages) and extraction.images == [None] * (count - 1)


def test_a_document_over_its_time_limit_is_stopped_between_page_groups(runtime: Runtime):
    settings = SETTINGS.model_copy(update={"document_timeout_s": 5.0})
    pipeline.check_deadline(pipeline.StageClock(started=time.perf_counter() - 4), settings, 8)  # in time
    with pytest.raises(DocumentTimeoutError, match=r"longer than 5 s \(8 pages done in 10 s\)"):
        pipeline.check_deadline(pipeline.StageClock(started=time.perf_counter() - 10), settings, 8)
    data = make_pdf([text_page(["Name: Jane Doe", "Date: 2024-01-02"])] * 2)
    hurried = SETTINGS.model_copy(update={"document_timeout_s": 1e-9})
    with pytest.raises(DocumentTimeoutError, match="select fewer pages"):
        run_pipeline(data, ExtractOptions(), hurried, runtime)


def test_multi_frame_tiff(tmp_path: Path, synthetic_pages: list[SyntheticPage], runtime: Runtime):
    data = write_tiff([p.image for p in synthetic_pages[:2]], tmp_path / "two.tif").read_bytes()
    result = extract_document(data, ExtractOptions(), SETTINGS, runtime)
    assert [p.page for p in result.pages] == [1, 2]
    assert all(p.status == "ok" and p.words and p.entities for p in result.pages)
    check_consistent(result)


def json_words(page: SyntheticPage) -> list[dict[str, object]]:
    """The form's true words, listed bottom-up (not reading order) with a line id per entity."""
    words = [
        {"text": w["text"], "box": w["box"], "line": e["id"]}
        for e in page.annotation["form"]
        for w in e["words"]
    ]
    return words[::-1]


def test_json_words_keep_their_order_and_ids(synthetic_pages: list[SyntheticPage], runtime: Runtime):
    words = json_words(synthetic_pages[1])
    data = json.dumps({"pages": [{"width": 850, "height": 1100, "words": words}]}).encode()
    result = extract_document(data, ExtractOptions(), SETTINGS, runtime)
    (page,) = result.pages
    assert [w.text for w in page.words] == [w["text"] for w in words]
    assert [w.box for w in page.words] == [w["box"] for w in words]
    assert all(w.confidence == 1.0 for w in page.words)
    assert page.entities and result.timings_ms.ocr < 50  # no OCR for given words
    check_consistent(result)


def test_json_page_without_words_has_no_entities(runtime: Runtime):
    data = json.dumps({"pages": [{"width": 100, "height": 100, "words": []}]}).encode()
    (page,) = extract_document(data, ExtractOptions(), SETTINGS, runtime).pages
    assert page.status == "ok" and page.words == [] and page.entities == []


# --- failures --------------------------------------------------------------------------------------------


def test_a_page_whose_ocr_fails_does_not_fail_the_document(
    tmp_path: Path, synthetic_pages: list[SyntheticPage], runtime: Runtime, monkeypatch: pytest.MonkeyPatch
):
    small = synthetic_pages[1].image.resize((800, 1000))
    data = write_tiff([synthetic_pages[0].image, small], tmp_path / "two.tif").read_bytes()
    real = tesseract.recognise

    def flaky(image: Image.Image, *args: object) -> object:
        if image.width == 800:
            raise tesseract.TesseractError("simulated crash")
        return real(image, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ocr, "recognise", flaky)
    extraction = run_pipeline(data, ExtractOptions(), SETTINGS, runtime)
    good, bad = extraction.result.pages
    assert good.status == "ok" and good.entities and good.error is None
    assert bad.status == "failed" and "simulated crash" in (bad.error or "")
    assert (bad.page, bad.width, bad.height) == (2, 800, 1000)
    assert bad.words == [] and bad.entities == [] and bad.relations == []
    assert render_overlay(extraction.images[1], bad).size == (800, 1000)


def test_unreadable_uploads_raise_domain_errors(runtime: Runtime, synthetic_pages: list[SyntheticPage]):
    with pytest.raises(UnsupportedFormatError):
        extract_document(b"GIF89a....", ExtractOptions(), SETTINGS, runtime)
    with pytest.raises(PageSelectionError):
        extract_document(png(synthetic_pages[0].image), ExtractOptions(pages="2"), SETTINGS, runtime)


def test_options_naming_another_model_are_refused(runtime: Runtime, synthetic_pages: list[SyntheticPage]):
    with pytest.raises(ValueError, match="other-model"):
        extract_document(
            png(synthetic_pages[0].image), ExtractOptions(model="other-model"), SETTINGS, runtime
        )


# --- relations and key-value pairs -----------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    head: int
    tail: int
    confidence: float


@dataclass(frozen=True)
class LinkedPrediction:
    entities: tuple
    relations: tuple[Link, ...]


class LinkingRuntime:
    """The real runtime plus a relation head that links each question to the next answer."""

    def __init__(self, inner: Runtime) -> None:
        self.inner, self.meta, self.label_set = inner, inner.meta, inner.label_set

    def predict_pages(self, pages):
        return [self.link(p) for p in self.inner.predict_pages(pages)]

    @staticmethod
    def link(prediction) -> LinkedPrediction:
        labels = [e.label for e in prediction.entities]
        links = [
            Link(i, i + 1, 0.9) for i in range(len(labels) - 1) if labels[i : i + 2] == ["question", "answer"]
        ]
        links += [Link(0, 1, 0.7)] if labels[:2] == ["header", "question"] else []
        return LinkedPrediction(prediction.entities, tuple(links))


def test_relations_become_key_values_and_arrows(synthetic_pages: list[SyntheticPage], runtime: Runtime):
    extraction = run_pipeline(
        png(synthetic_pages[0].image), ExtractOptions(), SETTINGS, LinkingRuntime(runtime)
    )
    result = extraction.result
    (page,) = result.pages
    questions = [r for r in page.relations if page.entities[r.head].label == "question"]
    assert questions and len(result.key_values) == len(questions)
    for pair, relation in zip(result.key_values, questions, strict=True):
        key, value = page.entities[relation.head], page.entities[relation.tail]
        assert (pair.page, pair.key, pair.value) == (1, key.text, value.text)
        assert (pair.key_box, pair.value_box, pair.confidence) == (key.box, value.box, 0.9)
    overlay = np.asarray(render_overlay(extraction.images[0], page), dtype=np.int16)
    assert (np.abs(overlay - np.asarray(ARROW_COLOUR)).max(axis=-1) == 0).sum() > 100
    for label in {e.label for e in page.entities}:
        assert (np.abs(overlay - np.asarray(label_colour(label))).max(axis=-1) == 0).sum() > 100


def test_links_with_a_header_are_not_key_values():
    def entity(index: int, label: str) -> ExtractedEntity:
        return ExtractedEntity(
            id=index, label=label, text=label, box=[0, 0, 1, 1], word_ids=[index], confidence=1
        )

    page = PageResult(
        page=2,
        width=10,
        height=10,
        entities=[entity(0, "header"), entity(1, "question"), entity(2, "answer")],
        relations=[
            ExtractedRelation(head=0, tail=1, confidence=1),
            ExtractedRelation(head=1, tail=2, confidence=1),
        ],
    )
    assert [(kv.page, kv.key, kv.value) for kv in key_values(page)] == [(2, "question", "answer")]


# --- small parts -----------------------------------------------------------------------------------------


def test_int_box_holds_the_float_box_and_stays_on_the_page():
    assert int_box((10.4, 20.6, 30.2, 40.0), 100, 100) == [10, 20, 31, 40]
    assert int_box((-3.0, 5.0, 120.5, 99.5), 100, 100) == [0, 5, 100, 100]


def test_options_override_settings():
    settings = effective_settings(SETTINGS, ExtractOptions(ocr_language="eng+deu", dpi=150))
    assert (settings.ocr_language, settings.pdf_dpi) == ("eng+deu", 150)
    assert effective_settings(SETTINGS, ExtractOptions()) == SETTINGS
    with pytest.raises(ValueError):
        ExtractOptions(ocr_language="eng; rm -rf /")


# --- the `docextract extract` command --------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Fast OCR and a private data dir for the command, whose settings come from the environment."""
    monkeypatch.setenv("DOCEXTRACT_OCR_QUALITY", "fast")
    monkeypatch.setenv("DOCEXTRACT_OCR_DETECT_ORIENTATION", "false")
    monkeypatch.setenv("DOCEXTRACT_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_extract_writes_json_and_one_overlay_per_page(
    tmp_path: Path, synthetic_pages: list[SyntheticPage], serving_dir: Path, cli_env: None
):
    source = write_tiff([p.image for p in synthetic_pages[:2]], tmp_path / "scan.tif")
    out, overlays = tmp_path / "result.json", tmp_path / "overlays"
    args = [
        "extract",
        str(source),
        "--json",
        str(out),
        "--overlay",
        str(overlays),
        "--model",
        str(serving_dir),
    ]
    result = runner.invoke(app, [*args, "--variant", "fp32", "--pages", "1-2"])
    assert result.exit_code == 0, result.output
    extraction = ExtractionResult.model_validate_json(out.read_text())
    assert [p.page for p in extraction.pages] == [1, 2] and extraction.pages[0].entities
    assert sorted(p.name for p in overlays.iterdir()) == ["scan-page-1.png", "scan-page-2.png"]
    with Image.open(overlays / "scan-page-1.png") as image:
        assert image.size == (850, 1100)


def test_cli_extract_prints_json(tmp_path: Path, serving_dir: Path, cli_env: None):
    words = [{"text": "Name:", "box": [10, 10, 60, 30]}, {"text": "Ann", "box": [70, 10, 110, 30]}]
    source = tmp_path / "words.json"
    source.write_text(json.dumps({"pages": [{"width": 200, "height": 100, "words": words}]}))
    result = runner.invoke(app, ["extract", str(source), "--model", str(serving_dir)])
    assert result.exit_code == 0, result.output
    printed = ExtractionResult.model_validate_json(result.stdout)
    assert [w.text for w in printed.pages[0].words] == ["Name:", "Ann"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"GIF89a\x01\x00", "GIF image"), (b"", "empty"), (b"%PDF-1.7\n garbage", "PDF")],
)
def test_cli_extract_reports_bad_files(
    tmp_path: Path, serving_dir: Path, content: bytes, message: str, cli_env: None
):
    source = tmp_path / "bad.bin"
    source.write_bytes(content)
    result = runner.invoke(app, ["extract", str(source), "--model", str(serving_dir)])
    assert result.exit_code == 1 and "error:" in result.output and message in result.output


def test_cli_extract_reports_a_missing_model(
    tmp_path: Path, synthetic_pages: list[SyntheticPage], cli_env: None
):
    source = tmp_path / "form.png"
    synthetic_pages[0].image.save(source)
    result = runner.invoke(app, ["extract", str(source), "--model", str(tmp_path)])
    assert result.exit_code == 1 and "not a model folder" in result.output


def test_the_relation_threshold_decides_which_links_are_reported(
    synthetic_pages: list[SyntheticPage], serving_dir: Path
):
    data = png(synthetic_pages[0].image)
    counts = []
    for threshold in (0.0, 0.5, 1.0):  # 1.0 keeps only links whose float32 sigmoid saturates
        runtime = Runtime.load(serving_dir, variant="int8", threads=1, relation_threshold=threshold)
        counts.append(len(extract_document(data, ExtractOptions(), SETTINGS, runtime).pages[0].relations))
    assert counts[0] >= counts[1] >= counts[2]
    assert counts[0] > 0
