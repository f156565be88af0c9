"""`Client`: the docextract HTTP API as Python calls. Errors raise `DocextractError` (with the problem
document); nothing here imports the service."""

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from docextract_client.http import Source, Transport, file_part, items, poll, query
from docextract_client.types import (
    Document,
    Extraction,
    Job,
    JobResult,
    Model,
    TrainingRun,
)


class Documents:
    """Stored documents: `/v1/documents`."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def upload(self, source: Source, filename: str | None = None) -> Document:
        return Document.model_validate(
            self._t.json("POST", "/v1/documents", files={"file": file_part(source, filename)})
        )

    def list(self, page_size: int = 100) -> Iterator[Document]:
        """Every stored document, newest first, fetched a page at a time."""
        after = None
        while True:
            body = self._t.json("GET", "/v1/documents", params=query(limit=page_size, after=after))
            yield from (Document.model_validate(item) for item in items(body, "documents"))
            after = body.get("next_cursor")
            if not after:
                return

    def get(self, document_id: str) -> Document:
        return Document.model_validate(self._t.json("GET", f"/v1/documents/{document_id}"))

    def result(self, document_id: str) -> Extraction:
        return Extraction.model_validate(self._t.json("GET", f"/v1/documents/{document_id}/result"))

    def delete(self, document_id: str) -> None:
        self._t.request("DELETE", f"/v1/documents/{document_id}")


class Jobs:
    """Batch jobs: `/v1/jobs`."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def submit(
        self,
        files: Sequence[Source] = (),
        document_ids: Sequence[str] = (),
        callback_url: str | None = None,
        **options: Any,
    ) -> Job:
        """Queue files and/or stored documents; `options`: model, ocr_lang, dpi, pages."""
        data: dict[str, Any] = {"document_ids": list(document_ids)}
        if callback_url:
            data["callback_url"] = callback_url
        parts = [("files", file_part(source)) for source in files]
        body = self._t.json("POST", "/v1/jobs", params=query(**options), data=data, files=parts or None)
        return Job.model_validate(body)

    def _fetch(self, job_id: str) -> tuple[Job, Any]:
        response = self._t.request("GET", f"/v1/jobs/{job_id}")
        return Job.model_validate(response.json()), response.headers

    def get(self, job_id: str) -> Job:
        return self._fetch(job_id)[0]

    def wait(
        self, job_id: str, timeout: float | None = None, interval: float = 0.5, max_interval: float = 10.0
    ) -> Job:
        """Poll until the job ends (backoff; `Retry-After` honoured when the server sends it)."""
        return poll(lambda: self._fetch(job_id), lambda job: job.ended, timeout, interval, max_interval)

    def results(self, job_id: str) -> Iterator[JobResult]:
        """Each document of the job with its result (None for a document that did not succeed)."""
        for document in self.get(job_id).documents:
            result = None
            if document.status == "succeeded" and document.result_url:
                result = Extraction.model_validate(self._t.json("GET", document.result_url))
            yield JobResult(document=document, result=result)

    def cancel(self, job_id: str) -> Job:
        return Job.model_validate(self._t.json("DELETE", f"/v1/jobs/{job_id}"))


class TrainingRuns:
    """Fine-tuning runs: `/v1/training-runs`."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def submit(
        self,
        dataset: Source,
        base_model: str = "default",
        epochs: int = 10,
        validation_fraction: float = 0.1,
        recombined_copies: int = 0,
    ) -> TrainingRun:
        """Start a run on a zip of a FUNSD-format folder (annotations/*.json, images/*)."""
        data = {
            "base_model": base_model,
            "epochs": str(epochs),
            "validation_fraction": str(validation_fraction),
            "recombined_copies": str(recombined_copies),
        }
        files = {"dataset": file_part(dataset, None if isinstance(dataset, str | Path) else "dataset.zip")}
        return TrainingRun.model_validate(self._t.json("POST", "/v1/training-runs", data=data, files=files))

    def _fetch(self, run_id: str) -> tuple[TrainingRun, Any]:
        response = self._t.request("GET", f"/v1/training-runs/{run_id}")
        return TrainingRun.model_validate(response.json()), response.headers

    def get(self, run_id: str) -> TrainingRun:
        return self._fetch(run_id)[0]

    def wait(
        self,
        run_id: str,
        on_progress: Callable[[TrainingRun], None] | None = None,
        timeout: float | None = None,
        interval: float = 1.0,
        max_interval: float = 15.0,
    ) -> TrainingRun:
        """Poll until the run ends, calling `on_progress` with every state fetched."""
        return poll(
            lambda: self._fetch(run_id), lambda run: run.ended, timeout, interval, max_interval, on_progress
        )

    def cancel(self, run_id: str) -> TrainingRun:
        return TrainingRun.model_validate(self._t.json("DELETE", f"/v1/training-runs/{run_id}"))


class Models:
    """Served models: `/v1/models`."""

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self) -> list[Model]:
        return [Model.model_validate(item) for item in items(self._t.json("GET", "/v1/models"), "models")]

    def get(self, model_id: str) -> Model:
        return Model.model_validate(self._t.json("GET", f"/v1/models/{model_id}"))

    def activate(self, model_id: str) -> Model:
        return Model.model_validate(self._t.json("POST", f"/v1/models/{model_id}/activate"))

    def delete(self, model_id: str) -> None:
        self._t.request("DELETE", f"/v1/models/{model_id}")


class Client:
    """The docextract API at `base_url`, with `api_key` sent as `X-API-Key` when given."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 120.0) -> None:
        self._t = Transport(base_url, api_key, timeout)
        self.documents = Documents(self._t)
        self.jobs = Jobs(self._t)
        self.training_runs = TrainingRuns(self._t)
        self.models = Models(self._t)

    def extract(
        self, source: Source | dict[str, Any], filename: str | None = None, **options: Any
    ) -> Extraction:
        """Extract one document synchronously: a file path, its bytes, or a JSON pages document (a dict:
        `{"pages": [{"width", "height", "words": [{"text", "box"}]}]}`). `options`: model, ocr_lang, dpi,
        pages."""
        params = query(**options)
        if isinstance(source, dict):
            body = self._t.json("POST", "/v1/extract", params=params, json=source)
        else:
            files = {"file": file_part(source, filename)}
            body = self._t.json("POST", "/v1/extract", params=params, files=files)
        return Extraction.model_validate(body)

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
