"""Application factory: `create_app(settings)` wires routers, error handlers, state and lifespan."""

import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware

from service import __version__
from service.api.auth import require_api_key
from service.api.batcher import Batchers
from service.api.docs import install_docs
from service.api.gate import RequestGate
from service.api.problem_docs import document_problems
from service.api.request_context import RequestContextMiddleware
from service.api.routes import documents, health, jobs, models, training
from service.api.routes import extract as extract_route
from service.deps import ExtractionCapacity, build_services
from service.errors import install_error_handlers
from service.jobs.worker import ExtractFn
from service.metrics import Metrics, MetricsMiddleware
from service.pipeline import extract_document
from service.schemas import Problem
from service.settings import Settings, get_settings

ROUTER_PROBLEMS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "API keys are set and the request has none, or a wrong one."},
    503: {"model": Problem, "description": "The data directory cannot be used (`storage-unavailable`)."},
}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Prepare the data directory, store and queue before serving; nothing happens at import or build
    time. Embedded mode consumes the queue here; the active model loads in the background (`/readyz`
    says when), and a request that needs it first simply waits for it."""
    settings: Settings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    services = await run_in_threadpool(build_services, settings, app.state.extract, app.state.metrics)
    app.state.services = services
    concurrency = settings.extract_concurrency or 2 * (os.cpu_count() or 1)
    batchers = None
    if settings.micro_batch_windows:
        batchers = Batchers(settings.micro_batch_windows, settings.micro_batch_wait_ms / 1000)
    app.state.extraction_capacity = ExtractionCapacity(anyio.CapacityLimiter(concurrency), batchers)
    if not settings.redis_url:
        services.queue.start()
    threading.Thread(target=services.registry.warm, name="model-warm-up", daemon=True).start()
    try:
        yield
    finally:
        if batchers is not None:
            await batchers.close()
        await run_in_threadpool(services.queue.stop)


def create_app(settings: Settings | None = None, extract: ExtractFn | None = None) -> FastAPI:
    """Build the FastAPI application for the given settings (default: from the environment).

    `extract` replaces the extraction pipeline (`service.pipeline.extract_document`)."""
    app = FastAPI(
        title="docextract",
        version=__version__,
        description="Document extraction: words, entities and key-value pairs from scanned forms.",
        lifespan=lifespan,
        docs_url=None,  # service.api.docs serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    app.state.settings = settings or get_settings()
    app.state.extract = extract or extract_document
    app.state.metrics = Metrics()
    install_error_handlers(app)
    document_problems(app)  # the OpenAPI document says what those handlers send
    add_middleware(app, app.state.settings)
    app.include_router(health.router)  # probes and metrics: never behind the API key
    install_docs(app)  # the API documentation: never behind the API key either
    for module in (extract_route, documents, jobs, models, training):
        app.include_router(module.router, dependencies=[Depends(require_api_key)], responses=ROUTER_PROBLEMS)
    return app


def add_middleware(app: FastAPI, settings: Settings) -> None:
    """The request gate innermost (API key and declared size, checked before a body is read), then
    metrics, then CORS (only with allowed origins), then request ids and access records outermost (so every
    response, a CORS preflight's and an unexpected error's included, carries its id)."""
    app.add_middleware(RequestGate, settings=settings)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=["Location", "X-Request-ID"],
            max_age=600,
        )
    build = app.build_middleware_stack
    # Outside Starlette's ServerErrorMiddleware (always the outermost layer), so 500s carry their id too.
    app.build_middleware_stack = lambda: RequestContextMiddleware(build())  # type: ignore[method-assign]
