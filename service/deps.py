"""What the routes and the queue workers share, built once per process, and the FastAPI dependencies that
hand it to the routes.

`build_services(settings)` opens the store of one data directory and builds the model registry, the
metrics, the queue worker and the queue. The app's lifespan (`service.main`) keeps that bundle, and the
extraction capacity (a thread limiter and the micro-batchers), on `app.state`; routes take them through
the `Annotated` aliases below and never read `app.state` themselves.
"""

from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Request

from service.api.batcher import Batchers
from service.jobs.queue import TaskQueue
from service.jobs.worker import ExtractFn, Worker
from service.metrics import Metrics
from service.pipeline import extract_document
from service.registry import Registry
from service.settings import Settings
from service.store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    registry: Registry
    metrics: Metrics
    extract: ExtractFn
    worker: Worker
    queue: TaskQueue


@dataclass(frozen=True)
class ExtractionCapacity:
    """How synchronous extractions share the process: at most `limiter` threads, model calls batched by
    `batchers` (None: each request calls the model on its own)."""

    limiter: anyio.CapacityLimiter
    batchers: Batchers | None


def build_services(
    settings: Settings, extract: ExtractFn = extract_document, metrics: Metrics | None = None
) -> Services:
    """Everything the API and the workers need, for one data directory (creates its folders)."""
    store = Store(settings.data_dir, settings.sqlite_journal_mode)
    store.init()
    registry, metrics = Registry(settings), metrics or Metrics()
    worker = Worker(settings, store, registry, metrics, extract)
    worker.queue = TaskQueue(settings, worker)
    return Services(settings, store, registry, metrics, extract, worker, worker.queue)


def get_services(request: Request) -> Services:
    """The services the app's lifespan built."""
    return request.app.state.services  # type: ignore[no-any-return]


def get_services_if_built(request: Request) -> Services | None:
    """The services, or None while the lifespan is still building them (readiness says so)."""
    return getattr(request.app.state, "services", None)


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (there before the lifespan runs)."""
    return request.app.state.settings  # type: ignore[no-any-return]


def get_extraction_capacity(request: Request) -> ExtractionCapacity:
    return request.app.state.extraction_capacity  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]
ServicesIfBuiltDep = Annotated[Services | None, Depends(get_services_if_built)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ExtractionCapacityDep = Annotated[ExtractionCapacity, Depends(get_extraction_capacity)]
