"""Application factory: `create_app(settings)` wires routers, error handlers, state and lifespan."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import __version__
from service.errors import install_error_handlers
from service.routes import health
from service.settings import Settings, get_settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Prepare what the app needs on disk before it serves; nothing happens at import or build time."""
    settings: Settings = app.state.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the FastAPI application for the given settings (default: from the environment)."""
    app = FastAPI(
        title="docextract",
        version=__version__,
        description="Document extraction: words, entities and key-value pairs from scanned forms.",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    install_error_handlers(app)
    app.include_router(health.router)
    return app
