from pathlib import Path

from typer.testing import CliRunner

from model.funsd import read_dataset
from service.cli.app import app

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


def test_recombine_writes_a_corpus_on_the_forms_layouts(tmp_path: Path, synthetic_dataset: Path):
    out = tmp_path / "recombined"
    result = runner.invoke(app, ["recombine", str(synthetic_dataset), "--out", str(out), "--variants", "3"])
    assert result.exit_code == 0, result.output
    sources = read_dataset(synthetic_dataset)
    pages = read_dataset(out)
    assert f"{len(pages)} pages" in result.output and len(pages) == 3 * len(sources)
    by_name = {d.name: d for d in sources}
    for page in pages:
        source = by_name[page.name.split("~r")[0]]
        assert (page.width, page.height, page.links) == (source.width, source.height, source.links)
        assert [e.box_px for e in page.entities] == [e.box_px for e in source.entities]
        assert page.image_path.read_bytes() == source.image_path.read_bytes()
    held = runner.invoke(
        app,
        ["recombine", str(synthetic_dataset), "--out", str(tmp_path / "held"), "--leave-out-split-seed", "0"],
    )
    assert held.exit_code == 0, held.output
    left_out = {d.name for d in sources} - {d.name.split("~r")[0] for d in read_dataset(tmp_path / "held")}
    assert len(left_out) == 1  # 10% of the forms, at least one


def test_recombine_reports_a_bad_folder_and_refuses_one_with_files(tmp_path: Path, synthetic_dataset: Path):
    result = runner.invoke(app, ["recombine", str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "no 'annotations' folder" in result.output
    into_source = runner.invoke(app, ["recombine", str(synthetic_dataset), "--out", str(synthetic_dataset)])
    assert into_source.exit_code == 1 and "is not empty" in into_source.output
    assert not list((synthetic_dataset / "annotations").glob("*~r*"))
