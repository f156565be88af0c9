"""`Retry-After` on the answers of work that is still going (jobs, training runs): how long a polling client
should wait before asking again, and its OpenAPI description."""

from typing import Any

from fastapi import Response

UNFINISHED = ("queued", "running")


def retry_after_header(seconds: int, what: str) -> dict[str, Any]:
    """The OpenAPI description of the header, for a `responses` entry's `headers`."""
    return {
        "Retry-After": {
            "description": f"Seconds to wait before polling again ({seconds}); while the {what} is queued or "
            "running.",
            "schema": {"type": "integer"},
        }
    }


def ask_to_retry(response: Response, status: str, seconds: int) -> None:
    """Set `Retry-After` when the work is still queued or running."""
    if status in UNFINISHED:
        response.headers["Retry-After"] = str(seconds)
