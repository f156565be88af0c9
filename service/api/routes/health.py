"""Liveness and readiness probes, and the Prometheus metrics."""

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from service import __version__
from service.deps import Services, ServicesDep, ServicesIfBuiltDep
from service.metrics import CONTENT_TYPE, Gauge
from service.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness probe")
async def healthz() -> Health:
    return Health(version=__version__)


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness probe",
    responses={503: {"model": Readiness, "description": "A required part is not ready."}},
)
def readyz(response: Response, services: ServicesIfBuiltDep) -> Readiness:
    """Ready when the data directory is writable (a file and the database are written for a moment), the
    queue answers and the active model is loaded."""
    checks = {"data_dir": services is not None and services.store.writable()}
    checks["queue"] = services is not None and services.queue.ping()
    checks["model"] = services is not None and services.registry.is_loaded()
    ready = all(checks.values())
    if not ready:
        response.status_code = 503
    return Readiness(ready=ready, checks=checks)


def gauges(services: Services) -> list[Gauge]:
    """The shared state, read at scrape time."""
    found = [
        Gauge("docextract_model_loaded", "1 when the active model is loaded in this process.", (),
              {(): float(services.registry.is_loaded())}),
        Gauge("docextract_job_documents", "Documents of jobs by status.", ("status",),
              {(k,): v for k, v in services.store.counts("job_documents").items()}),
        Gauge("docextract_training_runs", "Training runs by status.", ("status",),
              {(k,): v for k, v in services.store.counts("training_runs").items()}),
    ]  # fmt: skip
    try:
        depth = services.queue.depth()
    except Exception:  # an unreachable Redis must not break the scrape
        return found
    return [*found, Gauge("docextract_queue_depth", "Tasks waiting in each queue.", ("queue",),
                          {(k,): v for k, v in depth.items()})]  # fmt: skip


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format 0.0.4."}},
    summary="Prometheus metrics",
)
def metrics(services: ServicesDep) -> PlainTextResponse:
    """Request counts and latencies by route, documents and pages processed, stage timings (this
    process), queue depth and work by status (shared)."""
    return PlainTextResponse(services.metrics.render(gauges(services)), media_type=CONTENT_TYPE)
