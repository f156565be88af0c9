"""Store rows and registry entries -> the API's response models (one place for each resource's JSON)."""

from typing import Any

from service.registry import ModelEntry
from service.schemas import (
    EpochMetrics,
    ExtractionResult,
    Job,
    JobDocument,
    JobDocumentResult,
    JobProgress,
    JobSummary,
    RegisteredModel,
    StoredDocument,
    TrainingProgress,
    TrainingRun,
    TrainingRunSummary,
)
from service.store import TERMINAL, Row


def result_url(document_id: str) -> str:
    return f"/v1/documents/{document_id}/result"


def document_view(row: Row) -> StoredDocument:
    return StoredDocument(
        id=row["id"],
        filename=row["filename"],
        format=row["format"],
        size=row["size"],
        created=row["created"],
        result_url=result_url(row["id"]) if row["result_key"] else None,
        result_model=row["result_model"],
    )


def job_view(job: Row) -> Job:
    documents = [
        JobDocument(
            document_id=d["document_id"],
            filename=d["filename"],
            status=d["status"],
            error=d["error"],
            result_url=result_url(d["document_id"]) if d["status"] == "succeeded" else None,
        )
        for d in job["documents"]
    ]
    return Job(**job_fields(job, job_progress(job)), documents=documents)


def job_progress(job: Row) -> JobProgress:
    """A `Store.get_job` row's progress, from its documents."""
    rows = job["documents"]
    done = sum(d["status"] in TERMINAL for d in rows)
    return JobProgress(done=done, total=len(rows), pages_done=sum(d["pages"] or 0 for d in rows))


def job_document_result(document: Row, result: bytes | None) -> JobDocumentResult:
    """One job document (a row of `Store.get_job`'s `documents`) with its stored result's JSON bytes."""
    return JobDocumentResult(
        document_id=document["document_id"],
        filename=document["filename"],
        status=document["status"],
        error=document["error"],
        pages=document["pages"],
        result=None if result is None else ExtractionResult.model_validate_json(result),
    )


def job_summary_view(job: Row) -> JobSummary:
    """A `Store.list_jobs` row: its progress comes from the row's document counts."""
    progress = JobProgress(
        done=job["documents_done"], total=job["documents_total"], pages_done=job["pages_done"]
    )
    return JobSummary(**job_fields(job, progress))


def job_fields(job: Row, progress: JobProgress) -> dict[str, Any]:
    return {
        "id": job["id"],
        "status": job["status"],
        "created": job["created"],
        "started": job["started"],
        "finished": job["finished"],
        "model": job["options"].get("model") or "",
        "progress": progress,
        "callback_url": job["callback_url"],
    }


def epoch_view(record: dict[str, object]) -> EpochMetrics:
    return EpochMetrics.model_validate(record)


def run_view(run: Row) -> TrainingRun:
    return TrainingRun(**run_fields(run), metrics=[epoch_view(m) for m in run["metrics"]])


def run_summary_view(run: Row) -> TrainingRunSummary:
    """A `Store.list_runs` row (it has no metrics)."""
    return TrainingRunSummary(**run_fields(run))


def run_fields(run: Row) -> dict[str, Any]:
    options = run["options"]
    return {
        "id": run["id"],
        "status": run["status"],
        "created": run["created"],
        "started": run["started"],
        "finished": run["finished"],
        "base_model": options["base_model"],
        "epochs": options["epochs"],
        "validation_fraction": options["validation_fraction"],
        "recombined_copies": options.get("recombined_copies", 0),
        "documents": options.get("documents", 0),
        "progress": TrainingProgress(**run["progress"]),
        "model_id": run["model_id"],
        "error": run["error"],
    }


def model_view(entry: ModelEntry, active: str) -> RegisteredModel:
    return RegisteredModel(
        id=entry.id,
        labels=entry.labels,
        metrics=entry.metrics,
        created=entry.created,
        source_run=entry.source_run,
        builtin=entry.builtin,
        active=entry.id == active,
    )
