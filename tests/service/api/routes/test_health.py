"""GET /metrics through HTTP: Prometheus text with request, queue, work and model series."""

from fastapi.testclient import TestClient

from service.metrics import CONTENT_TYPE
from tests.service.support import wait_for, wait_for_job, words_document


def test_metrics_cover_requests_queue_work_and_the_model(api: TestClient):
    wait_for(lambda: api.get("/readyz").status_code == 200)
    api.post("/v1/extract", content=words_document(1))
    job = api.post("/v1/jobs", files=[("files", ("a.json", words_document(2)))])
    wait_for_job(api, job.headers["location"])
    response = api.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"] == CONTENT_TYPE
    text = response.text
    assert 'docextract_http_requests_total{method="POST",route="/v1/extract",status="200"} 1' in text
    assert 'docextract_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="200"}' in text
    assert 'docextract_http_request_duration_seconds_count{method="POST",route="/v1/jobs"} 1' in text
    assert 'docextract_pages_processed_total{source="extract"} 1' in text
    assert 'docextract_pages_processed_total{source="job"} 1' in text
    assert 'docextract_stage_duration_seconds_count{stage="model"} 2' in text
    assert 'docextract_queue_depth{queue="documents"} 0' in text
    assert 'docextract_queue_depth{queue="training"} 0' in text
    assert 'docextract_job_documents{status="succeeded"} 1' in text
    assert "docextract_model_loaded 1" in text
