"""Liveness and readiness probes."""

import os

from fastapi import APIRouter, Request, Response

from service import __version__
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
async def readyz(request: Request, response: Response) -> Readiness:
    data_dir = request.app.state.settings.data_dir
    checks = {"data_dir": data_dir.is_dir() and os.access(data_dir, os.W_OK)}
    ready = all(checks.values())
    if not ready:
        response.status_code = 503
    return Readiness(ready=ready, checks=checks)
