"""What the API answers, as typed objects. Unknown fields are kept (`extra="allow"`), so a newer server
with more fields still parses."""

from typing import Any

from pydantic import BaseModel, ConfigDict

FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class ApiObject(BaseModel):
    model_config = ConfigDict(extra="allow")


class Problem(ApiObject):
    """An RFC 9457 problem document: the body of every error answer."""

    type: str = "about:blank"
    title: str = ""
    status: int = 0
    detail: str = ""
    instance: str = ""
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


class ModelInfo(ApiObject):
    id: str
    labels: list[str] = []


class Extraction(ApiObject):
    """Everything extracted from one document: `pages` (words, entities, relations) and `key_values`."""

    document_id: str
    model: ModelInfo
    pages: list[dict[str, Any]]
    key_values: list[dict[str, Any]] = []
    timings_ms: dict[str, float] = {}


class Document(ApiObject):
    """A stored document; its id is the SHA-256 of its bytes."""

    id: str
    filename: str | None = None
    format: str | None = None
    size: int = 0
    created: str = ""
    result_url: str | None = None
    result_model: str | None = None


class JobProgress(ApiObject):
    done: int
    total: int


class JobDocument(ApiObject):
    document_id: str
    filename: str | None = None
    status: str
    error: str | None = None
    result_url: str | None = None


class Job(ApiObject):
    id: str
    status: str
    created: str = ""
    model: str = ""
    progress: JobProgress
    documents: list[JobDocument] = []
    callback_url: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in FINAL_STATUSES


class JobResult(ApiObject):
    """One document of a job and its result (None unless the document succeeded)."""

    document: JobDocument
    result: Extraction | None = None


class TrainingProgress(ApiObject):
    phase: str = "preparing"
    prepared: int = 0
    to_prepare: int = 0
    epoch: int = 0
    step: int = 0
    total_steps: int = 0


class TrainingRun(ApiObject):
    id: str
    status: str
    base_model: str = ""
    epochs: int = 0
    progress: TrainingProgress = TrainingProgress()
    model_id: str | None = None
    error: str | None = None
    metrics: list[dict[str, Any]] = []

    @property
    def ended(self) -> bool:
        return self.status in FINAL_STATUSES


class Model(ApiObject):
    id: str
    labels: list[str] = []
    metrics: dict[str, Any] = {}
    created: str = ""
    source_run: str | None = None
    builtin: bool = False
    active: bool = False
