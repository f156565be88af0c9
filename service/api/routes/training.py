"""Training runs: upload a FUNSD-format dataset zip, train in a child process, get a new model."""

import re
import shutil
import uuid

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile

from service.api.routes.paging import PageAfter, PageLimit, PageOffset, page_of, requested_cursor
from service.api.routes.polling import ask_to_retry, retry_after_header
from service.api.routes.uploads import read_upload
from service.deps import Services, ServicesDep
from service.errors import TrainingRunFinishedError, TrainingRunNotFoundError
from service.jobs.datasets import check_dataset_bytes, unpack_dataset
from service.jobs.training import MAX_RECOMBINED_COPIES
from service.registry import DEFAULT_ID, TRAINED_ID_FORM
from service.schemas import Problem, Status, TrainingRun, TrainingRunList
from service.views import run_summary_view, run_view

router = APIRouter(prefix="/v1/training-runs", tags=["training"])
RETRY_AFTER_S = 10  # what a polling client is told to wait while a run is queued or running (epochs: minutes)
RETRY_AFTER = retry_after_header(RETRY_AFTER_S, "run")
RUN_ID = re.compile(r"run_[0-9a-f]{32}")
RunId = Path(description="`run_` and 32 hex digits (any other id is a 404).")


def check_base_model(services: Services, base_model: str) -> None:
    if base_model != "minilm":
        services.registry.entry(base_model)  # ModelNotFoundError / NotReadyError


@router.post(
    "",
    status_code=202,
    response_model=TrainingRun,
    summary="Start a training run",
    responses={
        202: {
            "headers": {"Location": {"description": "The run's URL.", "schema": {"type": "string"}}}
            | RETRY_AFTER
        },
        400: {"model": Problem, "description": "A malformed multipart body."},
        404: {"model": Problem, "description": "No such base model."},
        413: {"model": Problem, "description": "The dataset is over a size limit."},
        422: {"model": Problem, "description": "The dataset is not a safe zip of FUNSD-format data."},
    },
)
def create_run(
    services: ServicesDep,
    response: Response,
    dataset: UploadFile = File(description="Zip of annotations/*.json and images/* (FUNSD format)."),
    base_model: str = Form(
        "default",
        pattern=f"^({DEFAULT_ID}|minilm|{TRAINED_ID_FORM})$",
        description="Start from the `default` model, a trained model's id, or the plain `minilm` encoder.",
    ),
    epochs: int = Form(10, ge=1, le=1000),
    validation_fraction: float = Form(0.1, ge=0.0, le=0.5),
    recombined_copies: int = Form(
        0,
        ge=0,
        le=MAX_RECOMBINED_COPIES,
        description="Before fine-tuning, pre-train for one pass over this many recombined copies of each "
        "training form (its entities' words swapped with other forms' entities of the same label and length; "
        "the validation forms left out). 0: off. On FUNSD samples 50 copies added 1.2 (10 forms) and 3.0-3.6 "
        "(25 forms) points of test entity F1 for about a third more training time (BENCHMARKS.md).",
    ),
) -> TrainingRun:
    """Check and unpack the dataset, queue the run (one at a time per worker) and return 202 at once."""
    check_base_model(services, base_model)
    data = read_upload(dataset.file, lambda size: check_dataset_bytes(size, services.settings))
    run_id = f"run_{uuid.uuid4().hex}"
    _, documents = unpack_dataset(data, services.store.dataset_dir(run_id), services.settings)
    options = {
        "base_model": base_model,
        "epochs": epochs,
        "validation_fraction": validation_fraction,
        "recombined_copies": recombined_copies,
        "documents": len(documents),
    }
    services.store.create_run(run_id, options)
    services.worker.enqueue_new("training_runs", [run_id])
    response.headers["Location"] = f"/v1/training-runs/{run_id}"
    run = existing_run(services, run_id)
    ask_to_retry(response, run.status, RETRY_AFTER_S)
    return run


@router.get("", response_model=TrainingRunList, summary="List training runs")
def list_runs(
    services: ServicesDep,
    limit: int = PageLimit,
    offset: int = PageOffset,
    after: str | None = PageAfter,
    status: Status | None = Query(None, description="Only the training runs with this status."),
) -> TrainingRunList:
    """Newest first; each run with its progress but not its metrics (`GET /v1/training-runs/{run_id}`)."""
    cursor_after = requested_cursor(offset, after)
    rows, total, cursor = page_of(services.store.list_runs(limit + 1, offset, status, cursor_after), limit)
    runs = [run_summary_view(r) for r in rows]
    return TrainingRunList(
        items=runs, training_runs=runs, total=total, limit=limit, offset=offset, next_cursor=cursor
    )


def existing_run(services: Services, run_id: str) -> TrainingRun:
    run = services.store.get_run(run_id) if RUN_ID.fullmatch(run_id) else None
    if run is None:
        raise TrainingRunNotFoundError(f"no training run {run_id}")
    return run_view(run)


@router.get(
    "/{run_id}",
    response_model=TrainingRun,
    responses={
        404: {"model": Problem, "description": "No such training run."},
        200: {"headers": RETRY_AFTER},
    },
    summary="A training run's status, progress and metrics",
)
def get_run(services: ServicesDep, response: Response, run_id: str = RunId) -> TrainingRun:
    run = existing_run(services, run_id)
    ask_to_retry(response, run.status, RETRY_AFTER_S)
    return run


@router.delete(
    "/{run_id}",
    response_model=TrainingRun,
    responses={
        404: {"model": Problem, "description": "No such training run."},
        409: {"model": Problem, "description": "The run has already succeeded or failed."},
    },
    summary="Cancel a training run",
)
def cancel_run(services: ServicesDep, run_id: str = RunId) -> TrainingRun:
    """A queued run never starts; a running one's training process is stopped and its work folder removed.
    Cancelling a cancelled run again answers the run as it is."""
    run = existing_run(services, run_id)
    if run.status != "cancelled" and not services.store.cancel_run(run_id):
        raise TrainingRunFinishedError(
            f"training run {run_id} has already {existing_run(services, run_id).status}"
        )
    shutil.rmtree(services.store.dataset_dir(run_id), ignore_errors=True)
    return existing_run(services, run_id)
