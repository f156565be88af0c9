"""Pydantic response and request models of the HTTP API."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field


class FieldError(BaseModel):
    """One invalid part of a request (request validation errors only)."""

    loc: list[str | int] = Field(description="Where: `query`, `path`, `body` and the names below it.")
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document, the body of every error response."""

    type: str = Field(description="Stable URI naming the kind of error.")
    title: str
    status: int
    detail: str
    instance: str = Field(description="Path of the request that failed.")
    request_id: str | None = Field(
        None, description="The request's id (also in the `X-Request-ID` response header and the logs)."
    )
    errors: list[FieldError] | None = Field(
        None, description="Each invalid part of the request (`validation-error` problems only)."
    )


class Health(BaseModel):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"
    version: str


class Readiness(BaseModel):
    """Readiness: what the service needs to serve requests, and whether each part is there."""

    ready: bool
    checks: dict[str, bool]


# --- Extraction results (service/pipeline.py) ------------------------------------------------------------

BoxInt = Annotated[
    list[int],
    Field(min_length=4, max_length=4, description="[x0, y0, x1, y1] in pixels of the page image."),
]


class ExtractOptions(BaseModel):
    """What a caller may choose per document; unset fields fall back to the service settings."""

    model: str | None = Field(None, description="Model id; default: the service's default model.")
    ocr_language: str | None = Field(
        None, pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$", description="Tesseract language(s), e.g. `eng+deu`."
    )
    dpi: int | None = Field(None, ge=36, le=1200, description="Resolution PDF pages are rasterised at.")
    pages: str | None = Field(None, description="1-based page selection, e.g. `1-3,5`; default: all.")


class ExtractedWord(BaseModel):
    """One word as recognised (OCR) or given (PDF text layer, JSON); `id` is its index on the page."""

    id: int
    text: str
    box: BoxInt
    confidence: float = Field(ge=0, le=1, description="OCR confidence; 1.0 for given words.")


class ExtractedEntity(BaseModel):
    """A labelled span of words (e.g. a question or an answer)."""

    id: int = Field(description="Index of the entity on its page; relations refer to it.")
    label: str
    text: str = Field(description="The entity's words joined with spaces.")
    box: BoxInt = Field(description="Union of the entity's word boxes.")
    word_ids: list[int]
    confidence: float = Field(ge=0, le=1)


class ExtractedRelation(BaseModel):
    """A directed link between two entities of a page, e.g. question (head) -> answer (tail)."""

    head: int
    tail: int
    confidence: float = Field(ge=0, le=1)


class PageResult(BaseModel):
    """One page: its words, entities and relations, or `status: failed` and an `error`."""

    page: int = Field(ge=1, description="1-based page number in the uploaded document.")
    width: int
    height: int
    status: Literal["ok", "failed"] = "ok"
    error: str | None = None
    rotation: int = Field(0, description="Degrees clockwise the page was turned upright before OCR.")
    words: list[ExtractedWord] = Field(default_factory=list)
    entities: list[ExtractedEntity] = Field(default_factory=list)
    relations: list[ExtractedRelation] = Field(default_factory=list)


class KeyValue(BaseModel):
    """A key and its value, read from a relation between two entities."""

    page: int
    key: str
    value: str
    key_box: BoxInt
    value_box: BoxInt
    confidence: float = Field(ge=0, le=1)


class ModelInfo(BaseModel):
    id: str
    labels: list[str]


class StageTimings(BaseModel):
    """Wall-clock milliseconds spent in each stage of the pipeline."""

    decode: float
    ocr: float
    model: float
    postprocess: float
    total: float


class ExtractionResult(BaseModel):
    """Everything extracted from one document."""

    document_id: str = Field(description="SHA-256 of the uploaded bytes.")
    model: ModelInfo
    pages: list[PageResult]
    key_values: list[KeyValue] = Field(default_factory=list)
    timings_ms: StageTimings


# --- Stored documents, jobs, training runs and models (service/api/routes/) ---------------------------------

ITEMS_DOC = "The listed items (of this page): every list answers with this key."
DEPRECATED_DOC = "The same as `items`; the old key is deprecated and will be removed."

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class StoredDocument(BaseModel):
    """An uploaded document kept by the service; its id is the SHA-256 of its bytes."""

    id: str = Field(description="SHA-256 of the uploaded bytes.")
    filename: str | None
    format: str | None = Field(description="Format detected from the content: pdf, png, jpeg, tiff, json...")
    size: int = Field(description="Size in bytes.")
    created: str
    result_url: str | None = Field(description="Where the latest result is, once a job has produced one.")
    result_model: str | None = Field(None, description="Model id of the latest result.")


class DocumentList(BaseModel):
    """One page of stored documents, newest first."""

    items: list[StoredDocument] = Field(description=ITEMS_DOC)
    documents: list[StoredDocument] = Field(
        description=DEPRECATED_DOC, json_schema_extra={"deprecated": True}
    )
    total: int
    limit: int
    offset: int
    next_cursor: str | None = Field(
        None, description="Pass as `after` for the next page (stable while items are added); null: no more."
    )


class JobProgress(BaseModel):
    done: int = Field(description="Documents that reached a final status.")
    total: int = Field(description="Documents of the job.")
    pages_done: int = Field(
        0,
        description="Pages of the documents that succeeded so far. A document's page count is known once "
        "its result is written, so there is no page total until every document has ended.",
    )


class JobDocument(BaseModel):
    document_id: str
    filename: str | None
    status: Status
    error: str | None = None
    result_url: str | None = Field(None, description="Where the result is, once the document succeeded.")


class JobSummary(BaseModel):
    """A job without its documents, as `GET /v1/jobs` lists it."""

    id: str
    status: Status
    created: str
    started: str | None = None
    finished: str | None = None
    model: str = Field(description="Model id every document of the job runs on.")
    progress: JobProgress
    callback_url: str | None = None


class Job(JobSummary):
    """An asynchronous batch. It ends `succeeded` when every document succeeded, `failed` when any
    failed (see each document's `error`), `cancelled` when cancelled."""

    documents: list[JobDocument]


class JobDocumentResult(BaseModel):
    """One document of a job and its result (null until it succeeded)."""

    document_id: str
    filename: str | None
    status: Status
    error: str | None = None
    pages: int | None = Field(None, description="Pages of the result; null until the document succeeded.")
    result: ExtractionResult | None = None


class JobResults(BaseModel):
    """Every document of a job with its result, in the job's order (`Accept: application/x-ndjson`: one
    `JobDocumentResult` a line instead, streamed)."""

    job_id: str
    status: Status
    progress: JobProgress
    results: list[JobDocumentResult]


class JobList(BaseModel):
    """One page of jobs, newest first; each job's documents are at `GET /v1/jobs/{job_id}`."""

    items: list[JobSummary] = Field(description=ITEMS_DOC)
    jobs: list[JobSummary] = Field(description=DEPRECATED_DOC, json_schema_extra={"deprecated": True})
    total: int = Field(description="Jobs that match the filter, on every page.")
    limit: int
    offset: int
    next_cursor: str | None = Field(
        None, description="Pass as `after` for the next page (stable while items are added); null: no more."
    )


TrainingPhase = Literal["preparing", "pretraining", "fine-tuning", "exporting", "finished"]


class TrainingProgress(BaseModel):
    phase: TrainingPhase = Field(
        "preparing",
        description="`preparing` (reading the dataset, loading the base model), `pretraining` on recombined "
        "copies (runs with `recombined_copies` > 0), `fine-tuning`, `exporting` (to ONNX), `finished`. Pages "
        "are tokenised at the start of `pretraining` and `fine-tuning` (`prepared` of `to_prepare`); epoch "
        "and steps count within the phase (`exporting` and `finished` keep the fine-tuning's).",
    )
    prepared: int = Field(0, description="Pages tokenised so far in this phase.")
    to_prepare: int = Field(0, description="Pages this phase tokenises before its first step.")
    epoch: int = 0
    step: int = 0
    total_steps: int = 0
    updated: str | None = Field(None, description="When the run last reported progress (UTC, ISO 8601).")
    resumed_from_epoch: int | None = Field(
        None,
        description="Set when this attempt resumed fine-tuning from the checkpoint of an earlier attempt "
        "(its worker stopped or died) after this many epochs.",
    )


class EpochMetrics(BaseModel):
    epoch: int
    loss: float | None
    entity_f1: float | None = Field(description="Validation entity F1 (seqeval-style spans).")
    relation_f1: float | None = Field(None, description="Validation relation F1, when the model has one.")


class TrainingRunSummary(BaseModel):
    """A training run without its per-epoch metrics, as `GET /v1/training-runs` lists it."""

    id: str
    status: Status
    created: str
    started: str | None = None
    finished: str | None = None
    base_model: str
    epochs: int
    validation_fraction: float
    recombined_copies: int = Field(
        0, description="Recombined copies per form pre-trained on first (0: none)."
    )
    documents: int = Field(description="Annotated pages in the dataset.")
    progress: TrainingProgress
    model_id: str | None = Field(None, description="The trained model, on success.")
    error: str | None = None


class TrainingRun(TrainingRunSummary):
    """A training run with the validation metrics of every epoch so far."""

    metrics: list[EpochMetrics]


class TrainingRunList(BaseModel):
    """One page of training runs, newest first; each run's metrics are at `GET /v1/training-runs/{run_id}`."""

    items: list[TrainingRunSummary] = Field(description=ITEMS_DOC)
    training_runs: list[TrainingRunSummary] = Field(
        description=DEPRECATED_DOC, json_schema_extra={"deprecated": True}
    )
    total: int = Field(description="Training runs that match the filter, on every page.")
    limit: int
    offset: int
    next_cursor: str | None = Field(
        None, description="Pass as `after` for the next page (stable while items are added); null: no more."
    )


class RegisteredModel(BaseModel):
    id: str
    labels: list[str]
    metrics: dict[str, Any]
    created: str
    source_run: str | None = Field(description="Training run that produced the model (None if built in).")
    builtin: bool
    active: bool = Field(description="New requests without a `model` run on the active model.")


class ModelList(BaseModel):
    """Every model (not paged: a registry holds few), the built-in one first."""

    items: list[RegisteredModel] = Field(description=ITEMS_DOC)
    models: list[RegisteredModel] = Field(description=DEPRECATED_DOC, json_schema_extra={"deprecated": True})
    total: int = Field(description="How many models there are.")
    active: str = Field(description="Id of the active model.")
