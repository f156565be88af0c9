"""A typed Python client of the docextract HTTP API (needs httpx and pydantic only)."""

from docextract_client.client import Client
from docextract_client.errors import DocextractError, WaitTimeout
from docextract_client.types import (
    Document,
    Extraction,
    Job,
    JobDocument,
    JobResult,
    Model,
    Problem,
    TrainingRun,
)

__all__ = [
    "Client",
    "DocextractError",
    "Document",
    "Extraction",
    "Job",
    "JobDocument",
    "JobResult",
    "Model",
    "Problem",
    "TrainingRun",
    "WaitTimeout",
]
