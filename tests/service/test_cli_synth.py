from pathlib import Path

from typer.testing import CliRunner

from service.cli import app

runner = CliRunner()


def test_synth_writes_a_folder_that_validate_data_accepts(tmp_path: Path):
    out = tmp_path / "corpus"
    result = runner.invoke(app, ["synth", "--out", str(out), "--n", "3", "--seed", "2", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "3 pages" in result.output and len(list((out / "images").glob("*.png"))) == 3
    checked = runner.invoke(app, ["validate-data", str(out), "--labels", "header,question,answer,other"])
    assert checked.exit_code == 0, checked.output
    assert "3 documents" in checked.output


def test_synth_invoice_schema_and_bad_schema(tmp_path: Path):
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "inv"), "--n", "2", "--schema", "invoice"])
    assert result.exit_code == 0, result.output
    checked = runner.invoke(app, ["validate-data", str(tmp_path / "inv")])
    assert checked.exit_code == 0 and "total" in checked.output
    bad = runner.invoke(app, ["synth", "--out", str(tmp_path / "bad"), "--n", "1", "--schema", "nope"])
    assert bad.exit_code == 1 and "unknown label schema" in bad.output
