import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from service import __version__
from service.cli.app import app
from service.settings import Settings, command_line_data_dir, get_settings
from tests.service.support import wait_for

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()
COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]  # type: ignore[union-attr]


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "openapi", "validate-data"):
        assert command in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"docextract {__version__}"


def test_validate_data_prints_statistics(synthetic_dataset: Path, synthetic_pages):
    result = runner.invoke(
        app, ["validate-data", str(synthetic_dataset), "--labels", "header,question,answer,other"]
    )
    assert result.exit_code == 0, result.output
    entities = sum(len(p.annotation["form"]) for p in synthetic_pages)
    assert f"{len(synthetic_pages)} documents, {entities} entities" in result.output


def test_validate_data_fails_with_file_and_entity(tmp_path: Path, synthetic_dataset: Path):
    target = tmp_path / "data"
    (target / "annotations").mkdir(parents=True)
    (target / "images").symlink_to(synthetic_dataset / "images")
    source = sorted((synthetic_dataset / "annotations").glob("*.json"))[0]
    annotation = json.loads(source.read_text())
    annotation["form"][1]["label"] = "signature"
    (target / "annotations" / source.name).write_text(json.dumps(annotation))
    result = runner.invoke(app, ["validate-data", str(target), "--labels", "header,question,answer,other"])
    assert result.exit_code == 1
    assert source.name in result.output and "entity 1" in result.output and "signature" in result.output


def test_openapi_command_writes_the_published_document(tmp_path: Path):
    out = tmp_path / "openapi.yaml"
    result = runner.invoke(app, ["openapi", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == (ROOT / "openapi.yaml").read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_runs_a_real_server(tmp_path: Path, serving_model: Path):
    port = _free_port()
    command = [sys.executable, "-m", "service", "serve", "--port", str(port)]
    env = {
        "DOCEXTRACT_DATA_DIR": str(tmp_path / "data"),
        "DOCEXTRACT_DEFAULT_MODEL_DIR": str(serving_model),
        "PATH": "/usr/bin:/bin",
    }
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "server did not start in 30 s"
                time.sleep(0.2)
        assert response.status_code == 200 and response.json()["status"] == "ok"
        ready = wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()["ready"], 30)
        assert ready is True
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_extract_outside_the_repository_exports_into_the_user_cache_as_the_default_model(
    tmp_path: Path, exported_model, monkeypatch: pytest.MonkeyPatch
):
    """No data dir configured: the model is exported once into $XDG_CACHE_HOME/docextract (said on stderr),
    nothing lands in the current folder, and the result names the model `default` as the server does."""
    cwd, cache = tmp_path / "elsewhere", tmp_path / "cache"
    cwd.mkdir()
    words = [{"text": "Name:", "box": [10, 10, 60, 30]}, {"text": "Ann", "box": [70, 10, 110, 30]}]
    source = tmp_path / "words.json"
    source.write_text(json.dumps({"pages": [{"width": 200, "height": 100, "words": words}]}))
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("DOCEXTRACT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("DOCEXTRACT_DEFAULT_MODEL_DIR", str(exported_model.model_dir))  # trained weights only
    get_settings.cache_clear()
    try:
        first = runner.invoke(app, ["extract", str(source)])
        second = runner.invoke(app, ["extract", str(source)])
    finally:
        get_settings.cache_clear()
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    exported = [p.parent for p in (cache / "docextract" / "models").glob("*/onnx.json")]
    assert len(exported) == 1, exported
    assert first.stderr.count("exporting the model to") == 1 and f"{exported[0]} (once)" in first.stderr
    assert "exporting" not in second.stderr  # exported once, then reused
    assert list(cwd.iterdir()) == []
    assert json.loads(first.stdout)["model"]["id"] == json.loads(second.stdout)["model"]["id"] == "default"


def test_command_line_data_dir_is_the_configured_one_or_the_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("DOCEXTRACT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert command_line_data_dir(Settings()) == tmp_path / "xdg" / "docextract"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: only absolute paths count
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert command_line_data_dir(Settings()) == tmp_path / "home" / ".cache" / "docextract"
    assert command_line_data_dir(Settings(data_dir=tmp_path / "mine")) == tmp_path / "mine"
    monkeypatch.setenv("DOCEXTRACT_DATA_DIR", str(tmp_path / "env"))
    assert command_line_data_dir(Settings()) == tmp_path / "env"


BOX_DRAWING = re.compile("[\u2500-\u257f]")


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_help_is_plain_text_within_80_columns(command: list[str]):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert not BOX_DRAWING.search(result.output), result.output
    assert "<bool>" not in result.output
    too_long = [line for line in result.output.splitlines() if len(line) > 80]
    assert not too_long, too_long


def test_help_of_the_installed_command_at_80_columns():
    """The real `docextract` executable, in a terminal 80 columns wide."""
    env = {**os.environ, "COLUMNS": "80"}
    for command in ([], ["train"]):
        done = subprocess.run(
            [str(Path(sys.executable).with_name("docextract")), *command, "--help"],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert "Usage: docextract" in done.stdout and not BOX_DRAWING.search(done.stdout), done.stdout
        assert max(len(line) for line in done.stdout.splitlines()) <= 80, done.stdout
    assert "--init <str>" in done.stdout and "[default: default]" in done.stdout
    assert "--resume  " in done.stdout and "--no-resume" not in done.stdout  # flags are plain switches
