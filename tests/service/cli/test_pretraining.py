import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.pretrain.data import read_pages
from model.train.checkpoint import load_model
from service.cli import pretraining
from service.cli.app import app
from service.cli.pretraining import build_corpus, find_images
from service.settings import Settings, get_settings
from tests.fixtures.forms import SyntheticPage, write_funsd_dataset

runner = CliRunner()
FAST_OCR = Settings(ocr_quality="fast", ocr_detect_orientation=False, ocr_workers=2)


@pytest.fixture
def fast_ocr_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fast OCR and one torch thread for the command (torch's thread count restored after)."""
    import torch

    threads = torch.get_num_threads()
    monkeypatch.setenv("DOCEXTRACT_OCR_QUALITY", "fast")
    monkeypatch.setenv("DOCEXTRACT_OCR_DETECT_ORIENTATION", "false")
    monkeypatch.setenv("DOCEXTRACT_TRAIN_THREADS", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    torch.set_num_threads(threads)


@pytest.fixture
def two_images(tmp_path: Path, synthetic_pages: list[SyntheticPage]) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for page in synthetic_pages[:2]:
        page.image.save(folder / f"{page.name}.png")
    return folder


def _words(page: SyntheticPage) -> list[str]:
    return [w["text"] for e in page.annotation["form"] for w in e["words"]]


def test_images_are_found_in_folders_and_funsd_folders(tmp_path: Path, synthetic_pages):
    funsd = write_funsd_dataset(synthetic_pages[:2], tmp_path / "funsd")
    other = tmp_path / "scans"
    (other / "deep").mkdir(parents=True)
    synthetic_pages[2].image.save(other / "deep" / "a.JPG", format="JPEG")
    synthetic_pages[3].image.save(other / "b.tif")
    (other / "notes.txt").write_text("not a page")
    found = find_images([funsd, other, other / "b.tif"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "funsd/images/synthetic_000000.png",
        "funsd/images/synthetic_000001.png",
        "scans/b.tif",
        "scans/deep/a.JPG",
    ]


def test_ocr_is_cached_by_content_and_unreadable_files_are_skipped(
    two_images: Path, tmp_path: Path, synthetic_pages, monkeypatch: pytest.MonkeyPatch
):
    (two_images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    pages_file, stats = build_corpus([two_images], tmp_path / "out", FAST_OCR)
    assert (stats.files, stats.cached, stats.skipped, stats.pages) == (3, 0, 1, 2)
    pages = read_pages(pages_file)
    for page, truth in zip(pages, synthetic_pages[:2], strict=True):
        assert (page.width, page.height) == truth.image.size and len(page.words) == len(page.boxes)
        recognised = set(page.words) & set(_words(truth))
        assert len(recognised) >= 0.7 * len(set(_words(truth)))
        assert (pages_file.parent / page.image).is_file()
    assert len(list((tmp_path / "out" / "ocr").glob("*.json"))) == 2

    def no_ocr(*args: object, **kwargs: object) -> None:
        raise AssertionError("OCR ran again")

    monkeypatch.setattr(pretraining, "ocr_pages", no_ocr)
    (two_images / "broken.png").unlink()
    again, stats = build_corpus([two_images], tmp_path / "out", FAST_OCR)
    assert (stats.files, stats.cached, stats.skipped) == (2, 2, 0) and read_pages(again) == pages


def test_pretrain_command_end_to_end(two_images: Path, tmp_path: Path, fast_ocr_env: None):
    out = tmp_path / "out"
    arguments = ["pretrain", "--images", str(two_images), "--out", str(out), "--size", "tiny"]
    arguments += ["--init", "random", "--steps", "3", "--batch-size", "1", "--checkpoint-every", "2"]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "2 files (0 from the OCR cache, 0 skipped): 2 pages" in result.output
    records = [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3] and all(
        {"mvlm", "tia", "tim"} <= set(r) for r in records
    )
    assert all((out / f"loss_{name}.png").is_file() for name in ("mvlm", "tia", "tim"))
    _, meta = load_model(out / "model")
    assert meta.training["pretraining"]["steps_done"] == 3
    again = runner.invoke(app, [*arguments[:5], "--steps", "0"])
    assert again.exit_code == 0 and "2 files (2 from the OCR cache, 0 skipped)" in again.output
