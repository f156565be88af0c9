"""No Docker engine runs here: these tests check the image recipe and the compose file by reading them."""

import re
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
    assert re.search(r"^USER docextract$", serve, re.M)
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
