"""The HTTP side of the client: one `httpx.Client`, error answers turned into `DocextractError`, the
documents of a request, and polling with backoff that honours `Retry-After`."""

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from docextract_client.errors import DocextractError, WaitTimeout

# A document to send: a file path, its bytes, or (filename, bytes).
Source = str | Path | bytes | tuple[str, bytes]
T = TypeVar("T")


class Transport:
    def __init__(self, base_url: str, api_key: str | None, timeout: float) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise DocextractError.from_response(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    def close(self) -> None:
        self.http.close()


def file_part(source: Source, filename: str | None = None) -> tuple[str, bytes]:
    """(filename, bytes) of a document to upload."""
    if isinstance(source, tuple):
        return source
    if isinstance(source, bytes):
        return filename or "document", source
    path = Path(source)
    return filename or path.name, path.read_bytes()


def query(**values: object) -> dict[str, Any]:
    """The query parameters that are set."""
    return {key: value for key, value in values.items() if value is not None}


def items(body: Mapping[str, Any], key: str) -> list[Any]:
    """The items of a list answer (its named key, or the shared `items` key)."""
    return list(body[key] if key in body else body.get("items", []))


def retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP date); None when absent or
    unreadable."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def poll(
    fetch: Callable[[], tuple[T, httpx.Headers]],
    done: Callable[[T], bool],
    timeout: float | None,
    interval: float,
    max_interval: float,
    on_update: Callable[[T], None] | None = None,
) -> T:
    """Fetch until `done`: waits `Retry-After` seconds when the server sends it, else an interval that
    grows by half each time up to `max_interval`. WaitTimeout after `timeout` seconds (None: no limit)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        value, headers = fetch()
        if on_update is not None:
            on_update(value)
        if done(value):
            return value
        delay = retry_after(headers)
        delay = min(delay, max_interval * 4) if delay is not None else interval
        interval = min(interval * 1.5, max_interval)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(f"still not ended after {timeout} s", value)
            delay = min(delay, left)
        time.sleep(delay)
