"""Asynchronous batch jobs: several documents through the queue, polled or announced by a callback."""

import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Depends, File, Form, Header, Path, Query, Response, UploadFile
from fastapi.responses import StreamingResponse

from service.api.routes.extract import query_options
from service.api.routes.paging import PageAfter, PageLimit, PageOffset, page_of, requested_cursor
from service.api.routes.polling import ask_to_retry, retry_after_header
from service.api.routes.uploads import UNREADABLE, checked_upload, document_size, read_upload
from service.deps import Services, ServicesDep
from service.errors import (
    BadRequestError,
    DocumentNotFoundError,
    JobFinishedError,
    JobNotEndedError,
    JobNotFoundError,
)
from service.ingest.load import DocumentFormat
from service.ingest.page import check_upload_bytes
from service.jobs.callbacks import check_callback_url
from service.pipeline import effective_settings
from service.schemas import ExtractOptions, Job, JobDocumentResult, JobList, JobResults, Problem, Status
from service.store import Row, sha256_hex
from service.views import job_document_result, job_progress, job_summary_view, job_view

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JobId = Path(description="`job_` and 32 hex digits (any other id is a 404).")
NOT_FOUND = {404: {"model": Problem, "description": "No such job."}}
RETRY_AFTER_S = 2  # what a polling client is told to wait while a job is queued or running
RETRY_AFTER = retry_after_header(RETRY_AFTER_S, "job")
NDJSON = "application/x-ndjson"


def check_callback(url: str | None, services: Services) -> str | None:
    if not url:
        return None
    return check_callback_url(url, services.settings.allow_private_callbacks)


def checked_uploads(
    services: Services, files: list[UploadFile], options: ExtractOptions
) -> list[tuple[str, DocumentFormat]]:
    """(document id, format) of every upload, each checked readable with the job's options: one bad file
    refuses the job as a whole (only one file is held in memory at a time)."""
    settings = effective_settings(services.settings, options)
    checked, total = [], 0
    for upload in files:
        data, fmt = checked_upload(upload, settings, options.pages)
        total += len(data)
        check_upload_bytes(total, settings.max_job_bytes, "the job (its files together)")
        checked.append((sha256_hex(data), fmt))
    return checked


def refuse_repeats(named: list[tuple[str, str | None]]) -> None:
    """BadRequestError when one document comes twice (an id named twice, or files with the same bytes):
    a job processes each document once, and silently keeping one of the two would lose the other's name."""
    first_name: dict[str, str | None] = {}
    for document_id, name in named:
        if document_id in first_name:
            names = " and ".join(repr(n) for n in (first_name[document_id], name) if n) or "twice"
            raise BadRequestError(
                f"document {document_id} comes twice in the job ({names}): a job processes each document "
                "once, so send it once"
            )
        first_name[document_id] = name


def job_documents(
    services: Services, files: list[UploadFile], document_ids: list[str], options: ExtractOptions
) -> list[tuple[str, str | None]]:
    """(document id, filename) of every named stored document and every upload; the uploads are stored
    once every file is known readable and no document comes twice (otherwise nothing is stored)."""
    ids = [part.strip() for value in document_ids for part in value.split(",") if part.strip()]
    if not files and not ids:
        raise BadRequestError(
            "a job needs at least one file (`files`) or stored document id (`document_ids`)"
        )
    documents = []
    for document_id in ids:
        row = services.store.get_document(document_id)
        if row is None:
            raise DocumentNotFoundError(f"no document {document_id}; upload it with POST /v1/documents")
        documents.append((document_id, row["filename"]))
    checked = checked_uploads(services, files, options)
    refuse_repeats(
        documents + [(sha, upload.filename) for (sha, _), upload in zip(checked, files, strict=True)]
    )
    for upload, (_, fmt) in zip(files, checked, strict=True):
        upload.file.seek(0)  # read again: only one file is held in memory at a time
        data = read_upload(upload.file, document_size(services.settings.max_upload_bytes, upload.filename))
        documents.append((services.store.add_document(data, upload.filename, fmt)["id"], upload.filename))
    return documents


@router.post(
    "",
    status_code=202,
    response_model=Job,
    summary="Start a batch job",
    responses={
        202: {
            "headers": {"Location": {"description": "The job's URL.", "schema": {"type": "string"}}}
            | RETRY_AFTER
        },
        400: {"model": Problem},
        404: {"model": Problem, "description": "A named document or model does not exist."},
    }
    | UNREADABLE,
)
def create_job(
    services: ServicesDep,
    response: Response,
    files: list[UploadFile] = File(default=[], description="Documents to process."),
    document_ids: list[str] = Form(
        default=[], description="Ids of stored documents (repeat, or comma-separate)."
    ),
    callback_url: str | None = Form(None, description="POSTed the job (as GET returns it) once it ends."),
    options: ExtractOptions = Depends(query_options),
) -> Job:
    """Queue every document; returns at once (202) with the job and its `Location`. Every file is read
    first, as `POST /v1/documents` reads it: one that cannot be read refuses the whole job (the problem
    names the file) and nothing is stored."""
    callback = check_callback(callback_url, services)
    model = services.registry.resolve(options.model)
    documents = job_documents(services, files, document_ids, options)
    job_id = f"job_{uuid.uuid4().hex}"
    job_options = ExtractOptions(**{**options.model_dump(), "model": model})
    services.store.create_job(job_id, documents, job_options.model_dump(), callback)
    job = services.store.get_job(job_id)
    assert job is not None
    services.worker.enqueue_new("job_documents", [item["id"] for item in job["documents"]])
    response.headers["Location"] = f"/v1/jobs/{job_id}"
    view = job_view(job)
    ask_to_retry(response, view.status, RETRY_AFTER_S)
    return view


@router.get("", response_model=JobList, summary="List jobs")
def list_jobs(
    services: ServicesDep,
    limit: int = PageLimit,
    offset: int = PageOffset,
    after: str | None = PageAfter,
    status: Status | None = Query(None, description="Only the jobs with this status."),
) -> JobList:
    """Newest first; each job with its progress but not its documents (`GET /v1/jobs/{job_id}`)."""
    cursor_after = requested_cursor(offset, after)
    rows, total, cursor = page_of(services.store.list_jobs(limit + 1, offset, status, cursor_after), limit)
    jobs = [job_summary_view(r) for r in rows]
    return JobList(items=jobs, jobs=jobs, total=total, limit=limit, offset=offset, next_cursor=cursor)


def stored_job(services: Services, job_id: str) -> Row:
    job = services.store.get_job(job_id)
    if job is None:
        raise JobNotFoundError(f"no job {job_id}")
    return job


def existing_job(services: Services, job_id: str) -> Job:
    return job_view(stored_job(services, job_id))


@router.get(
    "/{job_id}",
    response_model=Job,
    responses=NOT_FOUND | {200: {"headers": RETRY_AFTER}},
    summary="A job's status and progress",
)
def get_job(services: ServicesDep, response: Response, job_id: str = JobId) -> Job:
    job = existing_job(services, job_id)
    ask_to_retry(response, job.status, RETRY_AFTER_S)
    return job


def result_lines(services: Services, job: Row) -> Iterator[bytes]:
    """One JSON line a document, each result read from the store only when its line is sent."""
    for document in job["documents"]:
        yield document_result(services, document).model_dump_json().encode() + b"\n"


def document_result(services: Services, document: Row) -> JobDocumentResult:
    key = document["result_key"] if document["status"] == "succeeded" else None
    return job_document_result(document, None if key is None else services.store.read_result(key))


@router.get(
    "/{job_id}/results",
    response_model=JobResults,
    responses=NOT_FOUND
    | {
        200: {
            "content": {NDJSON: {"schema": {"$ref": "#/components/schemas/JobDocumentResult"}}},
            "description": f"JSON, or with `Accept: {NDJSON}` one `JobDocumentResult` a line, streamed.",
        }
    },
    summary="Every document's result",
)
def job_results(
    services: ServicesDep, job_id: str = JobId, accept: str | None = Header(None, include_in_schema=False)
) -> JobResults | StreamingResponse:
    """Each document of the job in order, with its status, error, page count and result (null until it
    succeeded). Asked for `application/x-ndjson`, the answer is streamed one document a line, each result
    read only when its line is written (for large jobs)."""
    job = stored_job(services, job_id)
    if accept and NDJSON in accept:
        return StreamingResponse(result_lines(services, job), media_type=NDJSON)
    results = [document_result(services, document) for document in job["documents"]]
    return JobResults(job_id=job_id, status=job["status"], progress=job_progress(job), results=results)


@router.delete(
    "/{job_id}",
    response_model=Job,
    responses=NOT_FOUND
    | {
        204: {"description": "`purge=true`: the ended job and its stored results are deleted."},
        409: {
            "model": Problem,
            "description": "Cancel: the job has already ended. Purge: the job has not ended yet.",
        },
    },
    summary="Cancel a job, or delete an ended one (purge=true)",
)
def cancel_job(
    services: ServicesDep,
    job_id: str = JobId,
    purge: bool = Query(
        False, description="Delete the ended job and its stored results instead of cancelling it."
    ),
) -> Job | Response:
    """Without `purge`: documents not yet finished are cancelled (a running one finishes but its result is
    not kept). With `purge=true`: an ended job (succeeded, failed or cancelled) is deleted with its result
    files that nothing else uses (204); a queued or running job is a 409 (cancel it first). The documents
    stay stored (`/v1/documents`), with their latest result."""
    existing_job(services, job_id)
    if purge:
        return purge_job(services, job_id)
    if not services.store.cancel_job(job_id):
        raise JobFinishedError(f"job {job_id} has already ended")
    services.worker.notify(job_id)
    return existing_job(services, job_id)


def purge_job(services: Services, job_id: str) -> Response:
    deleted = services.store.delete_job(job_id)
    if deleted is None:
        raise JobNotFoundError(f"no job {job_id}")
    if not deleted:
        raise JobNotEndedError(
            f"job {job_id} has not ended, so it cannot be deleted: cancel it first "
            f"(DELETE /v1/jobs/{job_id}), then purge it"
        )
    return Response(status_code=204)
