"""The published OpenAPI document, rendered from the application itself."""

import yaml

from service.main import create_app
from service.settings import Settings


def render_openapi_yaml() -> str:
    """OpenAPI of the app as deterministic YAML (the schema does not depend on settings)."""
    return yaml.safe_dump(create_app(Settings()).openapi(), sort_keys=True, allow_unicode=True)
