"""`/docs` and `/redoc` load everything from the service itself (no CDN), and stay open with API keys set."""

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings

REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""")
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture
def keyed(api_settings: Settings) -> TestClient:
    """The app with API keys set, without its lifespan: the pages need no store, queue or model."""
    return TestClient(create_app(api_settings.model_copy(update={"api_keys": ["secret"]})))


def references(html: str) -> list[str]:
    return [a or b for a, b in REFERENCE.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_no_other_host(keyed: TestClient, page: str) -> None:
    response = keyed.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    found = references(response.text)
    assert found, "the page references no assets at all"
    for reference in found:
        parts = urlsplit(reference)
        assert not parts.scheme and not parts.netloc, f"{page} loads {reference} from another host"
        assert reference.startswith("/"), reference
    assert "googleapis" not in response.text and "cdn." not in response.text


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_assets_are_served(keyed: TestClient, page: str) -> None:
    for reference in references(keyed.get(page).text):
        response = keyed.get(reference)
        assert response.status_code == 200, reference
        if reference == "/openapi.json":
            assert response.json()["info"]["title"] == "docextract"
            continue
        suffix = reference[reference.rindex(".") :]
        assert CONTENT_TYPES[suffix] in response.headers["content-type"], reference
        assert len(response.content) > 1000, reference


def test_swagger_ui_has_no_validator_badge(keyed: TestClient) -> None:
    """Swagger UI's validator badge would send the document to validator.swagger.io."""
    assert '"validatorUrl": null' in keyed.get("/docs").text
