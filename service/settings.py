"""Service configuration: one `Settings` object, built by `get_settings()` and injected.

Nothing reads the environment at import time; every value has an embedded default so the service runs
with no configuration at all. Environment variables use the prefix `DOCEXTRACT_` (e.g. `DOCEXTRACT_PORT`).
"""

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

LogLevel = Literal["debug", "info", "warning", "error"]
OcrQuality = Literal["fast", "accurate"]
LogFormat = Literal["text", "json"]
# A list from the environment: a JSON list (`["a", "b"]`) or comma-separated (`a,b`); empty = none.
StringList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """All runtime settings of the service and CLI."""

    model_config = SettingsConfigDict(env_prefix="DOCEXTRACT_", env_file=None, extra="ignore")

    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port of the HTTP server.")
    data_dir: Path = Field(
        Path("data"), description="Directory for uploads, results, the SQLite database and models."
    )
    log_level: LogLevel = Field("info", description="Log level of the service.")
    log_format: LogFormat = Field(
        "text",
        description="`text`: one readable line per record; `json`: one JSON object per line (request id, "
        "method, path, status and duration on each request's access record).",
    )

    # HTTP security (service/api/auth.py, service/main.py).
    api_keys: StringList = Field(
        default_factory=list,
        repr=False,
        description="API keys accepted in `X-API-Key` or `Authorization: Bearer` (comma-separated or a "
        "JSON list); empty = no authentication. `/healthz`, `/readyz` and `/metrics` stay open.",
    )
    cors_origins: StringList = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (CORS; comma-separated or a JSON "
        "list, `*` for any); empty = no CORS headers.",
    )
    allow_private_callbacks: bool = Field(
        False,
        description="Allow job `callback_url`s that point at loopback, private or link-local addresses "
        "(refused by default: server-side request forgery).",
    )
    callback_secret: str | None = Field(
        None,
        repr=False,
        description="Secret that signs job callbacks: each carries `X-Docextract-Timestamp` (unix seconds) "
        'and `X-Docextract-Signature: v1=<hex HMAC-SHA256 of "{timestamp}.{body}">`; unset = unsigned.',
    )

    # Ingestion (service/ingest/load.py): limits on what one upload may hold.
    max_upload_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Largest accepted upload, in bytes.")
    max_job_bytes: int = Field(
        500 * 1024 * 1024,
        ge=1,
        description="Most bytes all files of one job (`POST /v1/jobs`) may have together; each file is also "
        "held to `DOCEXTRACT_MAX_UPLOAD_BYTES`.",
    )
    max_pages: int = Field(100, ge=1, description="Most pages one document may have (after page selection).")
    max_page_pixels: int = Field(
        40_000_000, ge=1, description="Most pixels (width x height) one page image may have."
    )
    max_words_per_page: int = Field(
        5000,
        ge=1,
        description="Most words one page of JSON pages or of a PDF text layer may give the model (a dense "
        "printed page has 1,000-2,000); bounds the model time a request can take.",
    )
    pdf_dpi: int = Field(200, ge=36, le=1200, description="Resolution PDF pages are rasterised at.")
    pdf_text_min_words: int = Field(
        3, ge=1, description="A PDF page's text layer is used (no OCR) when it has at least this many words."
    )
    pdf_timeout_s: float = Field(120.0, gt=0, description="Time limit of each poppler call on a PDF.")

    # OCR (service/ingest/ocr.py).
    ocr_language: str = Field("eng", min_length=1, description="Tesseract language(s), e.g. `eng+deu`.")
    ocr_quality: OcrQuality = Field(
        "accurate",
        description="`fast`: page as is; `accurate`: upscale low-resolution pages, sparse-text mode.",
    )
    ocr_psm: int | None = Field(
        None, ge=0, le=13, description="Tesseract page-segmentation mode; unset = 3 (fast) or 11 (accurate)."
    )
    ocr_workers: int = Field(0, ge=0, description="Pages OCRed in parallel; 0 = one per CPU core.")
    extract_concurrency: int = Field(
        0,
        ge=0,
        description="Synchronous extractions (`POST /v1/extract`) run at once per process, the others wait "
        "their turn; 0 = two per CPU core. Bounds memory and keeps the event loop (and `/healthz`) "
        "responsive under load.",
    )
    micro_batch_windows: int = Field(
        16,
        ge=0,
        description="Concurrent synchronous extractions share model calls (micro-batching) of up to this "
        "many 512-token windows; 0 = every request calls the model on its own.",
    )
    micro_batch_wait_ms: float = Field(
        10.0, ge=0, le=1000, description="How long a model call waits for other requests to join it."
    )
    ocr_page_timeout_s: float = Field(60.0, gt=0, description="Time limit of each tesseract call on a page.")
    document_timeout_s: float = Field(
        1800.0,
        gt=0,
        description="Time limit of one document's extraction, checked between groups of 8 pages (the "
        "per-call limits above bound each step; this bounds their sum).",
    )
    ocr_detect_orientation: bool = Field(
        True, description="Detect pages scanned at 90/180/270 degrees (tesseract OSD) and turn them upright."
    )

    # Storage, queue and models (service/store.py, service/jobs/queue.py, service/registry.py).
    redis_url: str | None = Field(
        None,
        description="Redis URL of the distributed queue (e.g. `redis://host:6379/0`); run "
        "`docextract worker` processes to consume it. Unset = embedded SQLite queue consumed inside "
        "`docextract serve`.",
    )
    queue_workers: int = Field(
        1, ge=1, le=64, description="Documents processed at once by each consumer (embedded or worker)."
    )
    queue_poll_s: float = Field(
        0.5, gt=0, le=10, description="Longest wait of an idle SQLite-queue consumer between two polls."
    )
    lease_s: float = Field(
        30.0,
        gt=0,
        description="A running document or training run whose worker stops renewing its lease for this long "
        "is handed to another worker (at-least-once).",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        description="Attempts per document or training run before it is failed (a lost worker counts).",
    )
    sqlite_journal_mode: Literal["wal", "delete"] = Field(
        "wal",
        description="Journal mode of the SQLite metadata and queue; `delete` for a data dir on a network "
        "filesystem.",
    )
    callback_timeout_s: float = Field(10.0, gt=0, description="Time limit of each job callback request.")
    default_model_dir: Path | None = Field(
        None, description="Model folder served as the model `default`; unset = the bundled model."
    )
    model_variant: Literal["int8", "fp32"] = Field(
        "int8", description="Which ONNX graph of a model is served: dynamically quantised int8, or fp32."
    )
    model_threads: int = Field(0, ge=0, description="onnxruntime threads per model; 0 = one per CPU core.")
    relation_threshold: float = Field(
        0.5, ge=0.0, le=1.0, description="Least link probability for a key-value pair to be reported."
    )
    train_threads: int = Field(0, ge=0, description="torch threads of a training run; 0 = one per CPU core.")
    train_stall_s: float = Field(
        900.0,
        gt=0,
        description="A training run whose progress (phase, pages prepared, step) does not move for this long "
        "is stopped and failed as stalled; so is an export that takes longer.",
    )
    max_dataset_bytes: int = Field(
        500 * 1024 * 1024, ge=1, description="Largest accepted training dataset zip, in bytes."
    )
    max_dataset_unpacked_bytes: int = Field(
        2 * 1024 * 1024 * 1024, ge=1, description="Most bytes a training dataset zip may unpack to."
    )
    max_dataset_members: int = Field(20_000, ge=1, description="Most files a training dataset zip may hold.")
    max_dataset_ratio: float = Field(
        200.0, gt=1, description="Highest compression ratio of any member of a training dataset zip."
    )

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """`a,b` or `["a", "b"]` (from the environment) -> a list without blanks."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list):
            return [item.strip() for item in value if isinstance(item, str) and item.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Build the settings once per process (from the environment at call time, not import time)."""
    return Settings()


def command_line_data_dir(settings: Settings) -> Path:
    """Where a one-off command (`docextract extract`) keeps the models it exports: the data directory when
    one is configured (`DOCEXTRACT_DATA_DIR` or an explicit value), else the per-user cache
    `$XDG_CACHE_HOME/docextract` (default `~/.cache/docextract`), never `./data` of the current folder.
    Read when called, not at import time."""
    if "data_dir" in settings.model_fields_set:
        return settings.data_dir
    cache_home = Path(os.environ.get("XDG_CACHE_HOME", "").strip() or "relative")
    return (cache_home if cache_home.is_absolute() else Path.home() / ".cache") / "docextract"
