"""Store rows and registry entries -> the API's response models (one place for each resource's JSON)."""

from service.registry import ModelEntry
from service.schemas import (
    EpochMetrics,
    Job,
    JobDocument,
    JobProgress,
    RegisteredModel,
    StoredDocument,
    TrainingProgress,
    TrainingRun,
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
    done = sum(d.status in TERMINAL for d in documents)
    return Job(
        id=job["id"],
        status=job["status"],
        created=job["created"],
        started=job["started"],
        finished=job["finished"],
        model=job["options"].get("model") or "",
        progress=JobProgress(done=done, total=len(documents)),
        documents=documents,
        callback_url=job["callback_url"],
    )


def epoch_view(record: dict[str, object]) -> EpochMetrics:
    return EpochMetrics.model_validate(record)


def run_view(run: Row) -> TrainingRun:
    options = run["options"]
    return TrainingRun(
        id=run["id"],
        status=run["status"],
        created=run["created"],
        started=run["started"],
        finished=run["finished"],
        base_model=options["base_model"],
        epochs=options["epochs"],
        validation_fraction=options["validation_fraction"],
        documents=options.get("documents", 0),
        progress=TrainingProgress(**run["progress"]),
        metrics=[epoch_view(m) for m in run["metrics"]],
        model_id=run["model_id"],
        error=run["error"],
    )


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
