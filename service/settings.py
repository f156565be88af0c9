"""Service configuration: one `Settings` object, built by `get_settings()` and injected.

Nothing reads the environment at import time; every value has an embedded default so the service runs
with no configuration at all. Environment variables use the prefix `DOCEXTRACT_` (e.g. `DOCEXTRACT_PORT`).
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["debug", "info", "warning", "error"]


class Settings(BaseSettings):
    """All runtime settings of the service and CLI."""

    model_config = SettingsConfigDict(env_prefix="DOCEXTRACT_", env_file=None, extra="ignore")

    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port of the HTTP server.")
    data_dir: Path = Field(
        Path("data"), description="Directory for uploads, results, the SQLite database and models."
    )
    log_level: LogLevel = Field("info", description="Log level of the service.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Build the settings once per process (from the environment at call time, not import time)."""
    return Settings()
