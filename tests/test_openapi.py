"""openapi.yaml is the published contract: it must equal what the app generates."""

from pathlib import Path

import yaml
from fastapi.responses import JSONResponse

from service.main import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_openapi_yaml_matches_the_app():
    published = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    generated = create_app(Settings()).openapi()
    assert published == generated, "openapi.yaml is stale: run `make openapi`"


def test_every_route_declares_a_response_model():
    """Every JSON response is a pydantic model; the others (PNG overlays, Prometheus text) declare their
    media type instead."""
    app = create_app(Settings())
    for route in app.routes:
        if getattr(route, "include_in_schema", False) and hasattr(route, "response_model"):
            response_class = getattr(route.response_class, "value", route.response_class)
            if issubclass(response_class, JSONResponse):
                assert route.response_model is not None, route.path
            else:
                content = route.responses[200]["content"]
                assert content and "application/json" not in content, route.path
