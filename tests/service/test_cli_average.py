import json
from dataclasses import replace
from pathlib import Path

from typer.testing import CliRunner

from service.cli import app
from tests.model.test_soup import base_meta, saved_model

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
