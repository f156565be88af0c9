"""Prometheus text format written by hand: counters, histograms, gauges, and the request middleware."""

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.metrics import Gauge, Metrics, MetricsMiddleware
from service.schemas import ExtractionResult, ModelInfo, PageResult, StageTimings

SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="[^"]*",?)*\})? -?[0-9.e+Inf-]+$')


def result(pages: int) -> ExtractionResult:
    return ExtractionResult(
        document_id="x" * 64,
        model=ModelInfo(id="default", labels=["question"]),
        pages=[PageResult(page=n + 1, width=10, height=10) for n in range(pages)],
        timings_ms=StageTimings(decode=1.0, ocr=200.0, model=30.0, postprocess=1.0, total=232.0),
    )


def test_the_text_format_is_well_formed():
    metrics = Metrics()
    metrics.observe_request("GET", "/v1/jobs/{job_id}", 200, 0.02)
    metrics.observe_result(result(3), "job")
    metrics.observe_failure("extract")
    text = metrics.render(
        [Gauge("docextract_queue_depth", "Waiting tasks.", ("queue",), {("documents",): 4})]
    )
    assert text.endswith("\n")
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or SAMPLE.match(line), line
    assert 'docextract_pages_processed_total{source="job"} 3' in text
    assert 'docextract_documents_processed_total{source="extract",outcome="failed"} 1' in text
    assert 'docextract_queue_depth{queue="documents"} 4' in text
    assert 'docextract_stage_duration_seconds_bucket{stage="ocr",le="0.25"} 1' in text
    assert 'docextract_stage_duration_seconds_bucket{stage="ocr",le="0.1"} 0' in text


def test_histogram_buckets_are_cumulative_with_sum_and_count():
    metrics = Metrics()
    for seconds in (0.001, 0.3, 100.0):
        metrics.observe_request("POST", "/v1/extract", 200, seconds)
    text = metrics.render()
    prefix = 'docextract_http_request_duration_seconds_bucket{method="POST",route="/v1/extract",le='
    assert f'{prefix}"0.005"}} 1' in text and f'{prefix}"0.5"}} 2' in text and f'{prefix}"+Inf"}} 3' in text
    assert 'docextract_http_request_duration_seconds_count{method="POST",route="/v1/extract"} 3' in text
    assert 'docextract_http_request_duration_seconds_sum{method="POST",route="/v1/extract"} 100.301' in text


def test_label_values_are_escaped():
    metrics = Metrics()
    metrics.observe_request("GET", 'a"b\\c\nd', 404, 0.0)
    assert 'route="a\\"b\\\\c\\nd"' in metrics.render()


def test_the_middleware_labels_requests_with_the_route_template():
    metrics = Metrics()
    app = FastAPI()
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.get("/things/{thing_id}")
    def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    with TestClient(app) as client:
        client.get("/things/1")
        client.get("/things/2")
        client.get("/nowhere/3")
    text = metrics.render()
    assert 'docextract_http_requests_total{method="GET",route="/things/{thing_id}",status="200"} 2' in text
    assert 'docextract_http_requests_total{method="GET",route="<unmatched>",status="404"} 1' in text
