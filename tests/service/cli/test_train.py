import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from model.artifact import InputOptions
from model.bundled import bundled_model_dir
from model.funsd import read_dataset
from model.train.fine_tune import PRETRAIN_FOLDER
from service.cli.app import app
from service.cli.train import start_for
from service.settings import get_settings
from tests.fixtures.models import untrained_model_folder

runner = CliRunner()


def tiny_run(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--size", "tiny", "--init", "random", *extra]


def test_train_writes_the_best_model_and_records_its_options(synthetic_dataset: Path, tmp_path: Path):
    out = tmp_path / "run"
    args = tiny_run(synthetic_dataset, out, "--epochs", "2", "--validation-fraction", "0.2", "--bf16")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    history = json.loads((out / "history.json").read_text())
    assert history["options"]["bf16"] is True and len(history["history"]) == 2
    assert (out / "best" / "model.safetensors").is_file() and (out / "best" / "config.json").is_file()


def test_recombined_copies_pretrain_first_and_the_fine_tuning_starts_from_them(
    synthetic_dataset: Path, tmp_path: Path
):
    out = tmp_path / "run"
    args = tiny_run(synthetic_dataset, out, "--epochs", "1", "--validation-fraction", "0.25")
    result = runner.invoke(app, [*args, "--recombined-copies", "2"])
    assert result.exit_code == 0, result.output
    pretrained = out / PRETRAIN_FOLDER / "best"
    held_in = len(read_dataset(synthetic_dataset)) - 1  # one of four forms is the validation form
    assert f"one pass over {2 * held_in} recombined pages" in result.output
    assert (pretrained / "model.safetensors").is_file()
    pretraining = json.loads((out / PRETRAIN_FOLDER / "history.json").read_text())
    assert pretraining["options"]["epochs"] == 1 and pretraining["options"]["init"] == "random"
    fine_tuning = json.loads((out / "history.json").read_text())
    assert fine_tuning["options"]["init"] == str(pretrained)
    assert (out / "best" / "model.safetensors").is_file()

    resumed = runner.invoke(app, [*args, "--recombined-copies", "2", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "recombined pages" not in resumed.output and "earlier pre-training" in resumed.output


def test_recombined_copies_out_of_range_are_refused_before_any_work(synthetic_dataset: Path, tmp_path: Path):
    for bad in ("-1", "201"):
        result = runner.invoke(
            app, [*tiny_run(synthetic_dataset, tmp_path / "run"), "--recombined-copies", bad]
        )
        assert result.exit_code == 2 and "recombined-copies" in result.output
    assert not (tmp_path / "run").exists()


def test_a_model_folder_start_keeps_its_input_options_but_for_those_given(
    synthetic_dataset: Path, tmp_path: Path
):
    lines_in_annotation_order = InputOptions(word_order="annotation", box_level="line")
    folder = untrained_model_folder(tmp_path / "start", lines_in_annotation_order)
    common = ["train", "--data", str(synthetic_dataset), "--init", str(folder), "--epochs", "1"]
    own = runner.invoke(app, [*common, "--out", str(tmp_path / "own")])
    assert own.exit_code == 0, own.output
    inputs = json.loads((tmp_path / "own" / "history.json").read_text())["options"]["inputs"]
    assert (inputs["word_order"], inputs["box_level"]) == ("annotation", "line")
    given = runner.invoke(app, [*common, "--out", str(tmp_path / "given"), "--word-order", "reading"])
    assert given.exit_code == 0, given.output
    inputs = json.loads((tmp_path / "given" / "history.json").read_text())["options"]["inputs"]
    assert (inputs["word_order"], inputs["box_level"]) == ("reading", "line")


def test_a_start_that_cannot_be_is_a_usage_error(synthetic_dataset: Path, tmp_path: Path):
    wide = {"COLUMNS": "1000"}  # the error box does not wrap the message
    for init, size, reason in (
        (str(tmp_path), "minilm", "has no trained weights"),
        ("minilm", "tiny", "only the minilm size"),
    ):
        args = [
            "train",
            "--data",
            str(synthetic_dataset),
            "--out",
            str(tmp_path / "run"),
            "--init",
            init,
            "--size",
            size,
        ]
        result = runner.invoke(app, args, env=wide)
        assert result.exit_code == 2 and reason in result.output, result.output
    assert not (tmp_path / "run").exists()


@pytest.fixture
def default_model_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path | None], None]]:
    """Sets (or, with None, unsets) DOCEXTRACT_DEFAULT_MODEL_DIR for the command's settings."""

    def use(folder: Path | None) -> None:
        if folder is None:
            monkeypatch.delenv("DOCEXTRACT_DEFAULT_MODEL_DIR", raising=False)
        else:
            monkeypatch.setenv("DOCEXTRACT_DEFAULT_MODEL_DIR", str(folder))
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def test_train_starts_from_the_default_model_as_training_runs_do(
    synthetic_dataset: Path, tmp_path: Path, default_model_env: Callable[[Path | None], None]
):
    """No --init: the served default model (DOCEXTRACT_DEFAULT_MODEL_DIR, else the bundled one), as a
    training run's base_model `default`."""
    default_model_env(None)
    assert start_for("default", "minilm").init == str(bundled_model_dir())
    folder = untrained_model_folder(tmp_path / "served", InputOptions())
    default_model_env(folder)
    out = tmp_path / "run"
    args = ["train", "--data", str(synthetic_dataset), "--out", str(out), "--epochs", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "history.json").read_text())["options"]["init"] == str(folder)
    minilm = start_for("minilm", "minilm")  # the other starts still resolve
    assert minilm.init == "minilm" and start_for("random", "tiny").init == "random"


def test_a_default_model_without_weights_is_a_usage_error(
    synthetic_dataset: Path, tmp_path: Path, default_model_env: Callable[[Path | None], None]
):
    default_model_env(tmp_path)  # an ONNX-only serving folder, say: nothing to fine-tune
    args = ["train", "--data", str(synthetic_dataset), "--out", str(tmp_path / "run"), "--init", "default"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "model 'default' has no trained weights" in result.output, result.output
