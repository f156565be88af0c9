import json
from dataclasses import replace
from pathlib import Path

from typer.testing import CliRunner

from service.cli.app import app
from tests.model.train.test_soup import base_meta, saved_model

runner = CliRunner()


def test_average_writes_a_model_folder_that_names_its_ingredients(tmp_path: Path):
    first, second = saved_model(tmp_path / "a", 1), saved_model(tmp_path / "b", 2)
    result = runner.invoke(
        app, ["average", str(first), str(second), "--out", str(tmp_path / "soup"), "--half"]
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "soup" / "config.json").read_text())
    assert meta["training"]["soup_of"] == [str(first), str(second)]
    size = (tmp_path / "soup" / "model.safetensors").stat().st_size
    assert size < (first / "model.safetensors").stat().st_size


def test_average_of_models_from_different_starts_fails_with_a_message(tmp_path: Path):
    first = saved_model(tmp_path / "a", 1)
    second = saved_model(tmp_path / "b", 2, replace(base_meta(), training={"init": "other"}))
    result = runner.invoke(app, ["average", str(first), str(second), "--out", str(tmp_path / "soup")])
    assert result.exit_code == 1
    assert "one starting point" in result.output


def test_average_refuses_to_overwrite_an_ingredient(tmp_path: Path):
    first, second = saved_model(tmp_path / "a", 1), saved_model(tmp_path / "b", 2)
    result = runner.invoke(app, ["average", str(first), str(second), "--out", str(first)])
    assert result.exit_code == 2
    assert "--out" in result.output


def test_average_with_data_that_is_not_a_dataset_fails_with_a_message(tmp_path: Path):
    first, second = saved_model(tmp_path / "a", 1), saved_model(tmp_path / "b", 2)
    empty = tmp_path / "not-a-dataset"
    empty.mkdir()
    result = runner.invoke(
        app, ["average", str(first), str(second), "--out", str(tmp_path / "soup"), "--data", str(empty)]
    )
    assert result.exit_code == 1
    assert "annotations" in result.output


def test_average_with_the_training_data_prints_and_records_the_validation_scores(
    tmp_path: Path, synthetic_dataset: Path
):
    split = {"init": "s", "seed": 42, "validation_fraction": 0.5}
    first = saved_model(tmp_path / "a", 1, replace(base_meta(), training=split))
    second = saved_model(tmp_path / "b", 2, replace(base_meta(), training=split))
    out = tmp_path / "soup"
    args = ["average", str(first), str(second), "--out", str(out), "--data", str(synthetic_dataset)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "config.json").read_text())["metrics"]
    # the test models have no relation head; 2 of the 4 forms are the validation split
    assert set(metrics) == {"validation_entity_f1", "validation_documents", "validation_warning"}
    assert metrics["validation_documents"] == 2
    assert f"validation_entity_f1 {metrics['validation_entity_f1']:.4f}" in result.output
