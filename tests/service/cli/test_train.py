import json
from pathlib import Path

from typer.testing import CliRunner

from model.funsd import read_dataset
from service.cli.app import app
from service.cli.train import PRETRAIN_FOLDER

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
