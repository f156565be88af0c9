"""POST /v1/extract through HTTP, with the real pipeline and the tiny trained model."""

import hashlib
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from fastapi.testclient import TestClient

from service.errors import PROBLEM_CONTENT_TYPE
from service.main import create_app
from service.pipeline import extract_document
from service.settings import Settings
from tests.fixtures.forms import SyntheticPage
from tests.service.support import words_document


def problem(response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"].endswith("/" + kind), body
    return body


def test_a_json_pages_body_is_extracted(api: TestClient):
    data = words_document(1)
    response = api.post("/v1/extract", content=data, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["document_id"] == hashlib.sha256(data).hexdigest()
    assert result["model"] == {"id": "default", "labels": ["answer", "header", "question"]}
    page = result["pages"][0]
    assert (page["page"], page["width"], page["height"], page["status"]) == (1, 600, 800, "ok")
    assert [w["text"] for w in page["words"]][:2] == ["Name:", "Person1"]
    assert [w["id"] for w in page["words"]] == list(range(6))
    assert set(result["timings_ms"]) == {"decode", "ocr", "model", "postprocess", "total"}


def test_multipart_and_raw_bodies_give_the_same_result(api: TestClient):
    data = words_document(2)
    as_json = api.post("/v1/extract", content=data, headers={"content-type": "application/json"}).json()
    as_file = api.post("/v1/extract", files={"file": ("doc.json", data, "application/json")}).json()
    as_raw = api.post(
        "/v1/extract", content=data, headers={"content-type": "application/octet-stream"}
    ).json()
    for result in (as_file, as_raw):
        assert result["pages"] == as_json["pages"] and result["document_id"] == as_json["document_id"]


def test_a_scanned_page_is_read_with_ocr(api: TestClient, synthetic_pages: list[SyntheticPage]):
    image = io.BytesIO()
    synthetic_pages[1].image.save(image, "PNG")
    response = api.post("/v1/extract", files={"file": ("form.png", image.getvalue(), "image/png")})
    assert response.status_code == 200, response.text
    result = response.json()
    assert len(result["pages"][0]["words"]) > 10 and result["timings_ms"]["ocr"] > 0
    metrics = api.get("/metrics").text
    assert 'docextract_pages_processed_total{source="extract"} 1' in metrics
    assert 'docextract_stage_duration_seconds_count{stage="ocr"} 1' in metrics


def test_query_options_are_checked(api: TestClient):
    data = words_document(3)
    headers = {"content-type": "application/json"}
    problem(api.post("/v1/extract?pages=2", content=data, headers=headers), 422, "invalid-page-selection")
    problem(api.post("/v1/extract?pages=x", content=data, headers=headers), 422, "invalid-page-selection")
    problem(api.post("/v1/extract?dpi=10", content=data, headers=headers), 422, "validation-error")
    problem(api.post("/v1/extract?ocr_lang=en;rm", content=data, headers=headers), 422, "validation-error")
    problem(
        api.post("/v1/extract?model=mdl_0123456789abcdef", content=data, headers=headers),
        404,
        "model-not-found",
    )
    ok = api.post("/v1/extract?pages=1&model=default&ocr_lang=eng&dpi=150", content=data, headers=headers)
    assert ok.status_code == 200


def test_bad_uploads_are_problem_documents(api: TestClient):
    problem(
        api.post("/v1/extract", content=b"GIF89a....", headers={"content-type": "image/gif"}),
        415,
        "unsupported-format",
    )
    problem(
        api.post("/v1/extract", content=b"", headers={"content-type": "application/json"}), 422, "empty-file"
    )
    bad_json = json.dumps(
        {"pages": [{"width": 10, "height": 10, "words": [{"text": "x", "box": [0, 0, 50, 5]}]}]}
    )
    problem(
        api.post("/v1/extract", content=bad_json, headers={"content-type": "application/json"}),
        422,
        "invalid-pages-json",
    )
    problem(api.post("/v1/extract", files={"other": ("a.json", b"{}")}), 400, "bad-request")
    assert (
        'docextract_documents_processed_total{source="extract",outcome="failed"}' in api.get("/metrics").text
    )


def test_uploads_over_the_limit_are_refused(api_settings: Settings):
    settings = api_settings.model_copy(update={"max_upload_bytes": 100})
    with TestClient(create_app(settings)) as client:
        problem(client.post("/v1/extract", content=words_document(1)), 413, "upload-too-large")
        problem(
            client.post("/v1/extract", files={"file": ("a.json", words_document(1))}), 413, "upload-too-large"
        )


def test_no_model_is_a_503(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", default_model_dir=tmp_path / "none")
    with TestClient(create_app(settings)) as client:
        problem(client.post("/v1/extract", content=words_document(1)), 503, "not-ready")


def test_synchronous_extractions_run_at_most_extract_concurrency_at_once(api_settings: Settings):
    """The real pipeline, wrapped to count how many extractions run at the same moment."""
    running, most, lock = 0, 0, threading.Lock()

    def counting(*args):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.2)  # long enough for the others to pile up
            return extract_document(*args)
        finally:
            with lock:
                running -= 1

    settings = api_settings.model_copy(update={"extract_concurrency": 2})
    with TestClient(create_app(settings, extract=counting)) as client, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda n: client.post("/v1/extract", content=words_document(n)).status_code,
                                 range(8)))  # fmt: skip
    assert statuses == [200] * 8 and most == 2


def without_confidences(node: object) -> object:
    if isinstance(node, dict):
        return {k: without_confidences(v) for k, v in node.items() if k != "confidence"}
    if isinstance(node, list):
        return [without_confidences(v) for v in node]
    return node


def confidences(node: object) -> list[float]:
    if isinstance(node, dict):
        own = [float(node["confidence"])] if "confidence" in node else []
        return own + [c for k, v in node.items() if k != "confidence" for c in confidences(v)]
    if isinstance(node, list):
        return [c for v in node for c in confidences(v)]
    return []


def test_concurrent_extractions_share_model_calls_and_get_their_own_results(api_settings: Settings):
    documents = [words_document(n) for n in range(6)]
    alone = api_settings.model_copy(update={"micro_batch_windows": 0})
    with TestClient(create_app(alone)) as client:
        expected = [client.post("/v1/extract", content=d).json()["pages"] for d in documents]
        assert client.app.state.extraction_capacity.batchers is None  # type: ignore[attr-defined]
    batched = api_settings.model_copy(update={"micro_batch_windows": 16, "micro_batch_wait_ms": 300})
    with TestClient(create_app(batched)) as client, ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(lambda d: client.post("/v1/extract", content=d), documents))
        batchers = client.app.state.extraction_capacity.batchers  # type: ignore[attr-defined]
        calls = sum(batcher.runtime_calls for _, batcher in batchers._batchers.values())
    assert [r.status_code for r in responses] == [200] * 6
    got = [r.json()["pages"] for r in responses]
    # the same words, entities, relations and key-value pairs; confidences equal up to padding round-off
    assert without_confidences(got) == without_confidences(expected)
    assert np.allclose(confidences(got), confidences(expected), atol=1e-4)
    assert 1 <= calls < 6  # requests that arrived together shared a session call
