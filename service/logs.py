"""Logging of the service and the workers: plain text or one JSON object per line (`log_format`).

Every record carries the id of the HTTP request it belongs to (`request_id`, set by
`service.api.request_context.RequestContextMiddleware` in a context variable, which follows the request into
its worker threads), or null outside requests. The middleware writes one access record per request on the
logger `docextract.access` with `method`, `path`, `status` and `duration_ms` as extra fields; the JSON
format puts every such extra field into the object.
"""

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

from service.settings import Settings

request_id_var: ContextVar[str | None] = ContextVar("docextract_request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
# Attributes every LogRecord has: whatever else a record carries came as `extra=` and goes into the JSON.
STANDARD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Stamps each record with the current request id (`-` in text, null in JSON, outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name, value in record.__dict__.items():
            if name not in STANDARD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().format(record)


def configure_logging(settings: Settings) -> None:
    """One stderr handler on the root logger with the settings' format and level (uvicorn's loggers
    propagate to it: run uvicorn with `log_config=None`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
