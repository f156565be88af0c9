"""openapi.yaml is the published contract: it must equal what the app generates."""

from pathlib import Path

import yaml

from service.main import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_openapi_yaml_matches_the_app():
    published = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    generated = create_app(Settings()).openapi()
    assert published == generated, "openapi.yaml is stale: run `make openapi`"


def test_every_route_declares_a_response_model():
    app = create_app(Settings())
    for route in app.routes:
        if getattr(route, "include_in_schema", False) and hasattr(route, "response_model"):
            assert route.response_model is not None, route.path
