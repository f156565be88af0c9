"""Stored documents through HTTP: upload, list, read, delete, latest result and page overlays."""

import base64
import hashlib
import io
import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.fixtures import broken
from tests.fixtures.fake_pdf import FakePage, TextRun, make_pdf, text_page
from tests.service.api.routes.test_extract import problem
from tests.service.support import wait_for_job, words_document


def encoded(fmt: str) -> bytes:
    image = Image.new("RGB", (120, 80), "white")
    image.paste((0, 0, 0), (10, 10, 60, 30))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


PNG, JPEG, TIFF = encoded("PNG"), encoded("JPEG"), encoded("TIFF")
PDF = make_pdf([text_page(["Name: Jane Doe", "Date: 2024-01-02"])])
# Bytes that look like a supported format but do not load: (data, status, problem type).
UNREADABLE = {
    "truncated png": (PNG[: len(PNG) // 2], 422, "corrupt-file"),
    "truncated jpeg": (JPEG[: len(JPEG) * 9 // 10], 422, "corrupt-file"),  # Image.verify() passes it
    "pdf header, garbage body": (b"%PDF-1.4\n" + bytes(range(256)) * 16, 422, "corrupt-file"),
    "tiff header only": (b"II*\x00", 422, "corrupt-file"),
    "pdf over the page limit": (make_pdf([FakePage()] * 101), 413, "too-many-pages"),
    "json box outside the page": (
        json.dumps(
            {"pages": [{"width": 9, "height": 9, "words": [{"text": "x", "box": [0, 0, 50, 5]}]}]}
        ).encode(),
        422,
        "invalid-pages-json",
    ),
}


def upload(client: TestClient, data: bytes, name: str = "doc.json") -> dict:
    response = client.post("/v1/documents", files={"file": (name, data, "application/octet-stream")})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/documents/{response.json()['id']}"
    return response.json()


def process(client: TestClient, document_id: str) -> dict:
    response = client.post("/v1/jobs", data={"document_ids": document_id})
    assert response.status_code == 202, response.text
    return wait_for_job(client, response.headers["location"])


def test_upload_is_content_addressed_and_listed(api: TestClient):
    data = words_document(1)
    stored = upload(api, data, "first.json")
    assert stored["id"] == hashlib.sha256(data).hexdigest()
    assert (stored["format"], stored["size"], stored["result_url"]) == ("json", len(data), None)
    assert upload(api, data, "again.json")["id"] == stored["id"]
    upload(api, words_document(2))
    listing = api.get("/v1/documents", params={"limit": 1}).json()
    assert listing["total"] == 2 and len(listing["documents"]) == 1 and listing["limit"] == 1
    newest_first = [d["filename"] for d in api.get("/v1/documents").json()["documents"]]
    assert newest_first == ["doc.json", "first.json"]
    assert api.get("/v1/documents", params={"offset": 1}).json()["documents"][0]["filename"] == "first.json"
    assert api.get(f"/v1/documents/{stored['id']}").json()["filename"] == "first.json"


def test_delete(api: TestClient):
    stored = upload(api, words_document(3))
    assert api.delete(f"/v1/documents/{stored['id']}").status_code == 204
    problem(api.get(f"/v1/documents/{stored['id']}"), 404, "document-not-found")
    problem(api.delete(f"/v1/documents/{stored['id']}"), 404, "document-not-found")
    problem(api.get("/v1/documents/not-a-sha"), 404, "document-not-found")


def test_uploads_of_unsupported_formats_are_refused(api: TestClient):
    response = api.post("/v1/documents", files={"file": ("a.gif", b"GIF89a....", "image/gif")})
    problem(response, 415, "unsupported-format")
    assert api.get("/v1/documents").json()["total"] == 0


def test_unreadable_uploads_are_refused_as_extract_refuses_them_and_not_stored(api: TestClient):
    store = api.app.state.services.store
    for name, (data, status, kind) in UNREADABLE.items():
        response = api.post("/v1/documents", files={"file": ("scan.bin", data, "application/octet-stream")})
        assert "'scan.bin'" in problem(response, status, kind)["detail"], name
        problem(api.post("/v1/extract", content=data), status, kind)
        assert store.get_document(hashlib.sha256(data).hexdigest()) is None, name
    assert api.get("/v1/documents").json()["total"] == 0


def test_readable_uploads_are_stored_with_their_format(api: TestClient):
    for data, fmt in (
        (PNG, "png"),
        (JPEG, "jpeg"),
        (TIFF, "tiff"),
        (PDF, "pdf"),
        (words_document(7), "json"),
    ):
        assert upload(api, data, f"doc.{fmt}")["format"] == fmt
    assert api.get("/v1/documents").json()["total"] == 5


def test_the_result_exists_once_a_job_processed_the_document(api: TestClient):
    stored = upload(api, words_document(4))
    problem(api.get(f"/v1/documents/{stored['id']}/result"), 404, "result-not-found")
    process(api, stored["id"])
    document = api.get(f"/v1/documents/{stored['id']}").json()
    assert document["result_url"] == f"/v1/documents/{stored['id']}/result"
    assert document["result_model"] == "default"
    result = api.get(document["result_url"]).json()
    assert result["document_id"] == stored["id"] and result["pages"][0]["words"]


def test_the_overlay_is_a_png_of_the_page(api: TestClient):
    image = Image.new("RGB", (600, 800), "white")
    encoded = io.BytesIO()
    image.save(encoded, "PNG")
    document = json.loads(words_document(5))
    document["pages"][0]["image"] = base64.b64encode(encoded.getvalue()).decode()
    stored = upload(api, json.dumps(document).encode())
    problem(api.get(f"/v1/documents/{stored['id']}/pages/1/overlay.png"), 404, "result-not-found")
    process(api, stored["id"])
    response = api.get(f"/v1/documents/{stored['id']}/pages/1/overlay.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    overlay = Image.open(io.BytesIO(response.content))
    assert overlay.format == "PNG" and overlay.width >= 600
    problem(api.get(f"/v1/documents/{stored['id']}/pages/2/overlay.png"), 404, "result-not-found")
    problem(api.get(f"/v1/documents/{stored['id']}/pages/0/overlay.png"), 422, "validation-error")


def test_an_overlay_without_a_page_image(api: TestClient):
    stored = upload(api, words_document(6))
    process(api, stored["id"])
    response = api.get(f"/v1/documents/{stored['id']}/pages/1/overlay.png")
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")


def test_listing_offsets_beyond_sqlite_integers_are_refused(api: TestClient):
    """Found by the schemathesis run: an offset over 2**63 reached SQLite and was a 500."""
    problem(api.get("/v1/documents", params={"offset": 2**70}), 422, "validation-error")
    assert api.get("/v1/documents", params={"offset": 2**62}).json()["documents"] == []


def test_the_overlay_of_a_pdf_page_is_drawn_at_the_resolution_its_job_chose(api: TestClient):
    # 3000 x 3000 points: 8333 x 8333 pixels at the default 200 dpi, over the pixel limit; 3000 x 3000 at 72
    runs = [TextRun(100, 2800, 40, "Name: Jane Doe"), TextRun(100, 2700, 40, "Date: 2024")]
    data = make_pdf([FakePage(runs, (3000, 3000))])
    response = api.post("/v1/jobs?dpi=72", files=[("files", ("big.pdf", data, "application/pdf"))])
    assert response.status_code == 202, response.text
    assert wait_for_job(api, response.headers["location"])["status"] == "succeeded"
    document_id = hashlib.sha256(data).hexdigest()
    page = api.get(f"/v1/documents/{document_id}/result").json()["pages"][0]
    assert (page["width"], page["height"]) == (3000, 3000)
    response = api.get(f"/v1/documents/{document_id}/pages/1/overlay.png")
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).size == (3000, 3000)


def test_the_overlay_of_a_pdf_page_without_a_size_is_refused(api: TestClient):
    """A PDF whose page tree loops, stored (with a result) before uploads were checked for it: poppler gives
    its looped page 0 x 0 points, which the overlay divided by (a 500); now a typed problem."""
    looped = broken.page_tree_loops()["a loop beside a page with text"]
    processed = upload(api, words_document(7))
    process(api, processed["id"])
    result = api.get(f"/v1/documents/{processed['id']}/result").json()
    store = api.app.state.services.store
    document_id = store.add_document(looped, "looped.pdf", "pdf")["id"]
    result["document_id"] = document_id
    result["pages"][0].update(page=2, width=1, height=1)
    key = store.write_result(document_id, "default", {}, json.dumps(result).encode())
    store.point_result(document_id, key, "default")
    response = api.get(f"/v1/documents/{document_id}/pages/2/overlay.png")
    assert "page 2 of the PDF has no size" in problem(response, 422, "corrupt-file")["detail"]


MALFORMED_DOCUMENT_IDS = ["not-a-sha", "A" * 64, "a" * 63, "a" * 65, "a" * 64 + "%0A", "g" * 64, "%20"]


@pytest.mark.parametrize("document_id", MALFORMED_DOCUMENT_IDS)
def test_a_malformed_document_id_is_not_found(api: TestClient, document_id: str):
    """Whatever its form, an id that names no document is a 404 on every document route (never a 422)."""
    upload(api, words_document(1))
    for method, path in [
        ("GET", ""),
        ("DELETE", ""),
        ("GET", "/result"),
        ("GET", "/pages/1/overlay.png"),
    ]:
        response = api.request(method, f"/v1/documents/{document_id}{path}")
        problem(response, 404, "document-not-found")
