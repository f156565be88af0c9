"""Training runs, executed in a child process: `python -m service.jobs.training RUN_ID CLAIM` (settings JSON
on stdin). torch (the `train` extra) is imported in the child only, so the API and workers never load it and
stay responsive while a run trains.

The parent (`run_in_child`, a training-queue worker thread) watches the child (`service.jobs.supervision`)
while the worker's lease keeper renews the run's lease: on shutdown it stops the child and queues the run
again; a cancelled run's child is stopped; a run whose progress stalls is stopped and failed. The child's
environment is explicit (`training_environment`): nothing set in the worker reaches it by accident.

The child reads the unpacked dataset (phase `preparing`), fine-tunes from the run's base model (`default`,
a trained model id, or `minilm`) - first pre-training on recombined copies of the training forms when the
run asks for them (`pretraining`) - writing progress and per-epoch metrics (fine-tuning epochs only) to the
store (`fine-tuning`), exports the best epoch to ONNX (`exporting`), registers it as a new model and marks
the run succeeded with the model's id (`finished`), or failed with the error and the end of its log. Its
work folder (`work_dir`, also its working directory) holds the fine-tuning (`best/`, `last/`, `history.json`;
`model.train.fine_tune`), its pre-training (`pretrain/`), the exported model (`serving/`) and its log: a
later attempt goes on from there.
"""

import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.jobs.supervision import failure_report, stall_message, supervise
from service.settings import Settings
from service.store import TERMINAL, Store, now_iso
from service.threads import cpu_threads, python_child_environment, torch_threads

if TYPE_CHECKING:
    from model.train.start import StartPoint
    from model.train.trainer import EpochRecord

PROGRESS_EVERY_S = 0.5
MAX_RECOMBINED_COPIES = 200  # per training form: `recombined_copies` (API) and `--recombined-copies` (CLI)
CHILD_LOG = "child.log"


def work_dir(settings: Settings, run_id: str) -> Path:
    return settings.data_dir / "tmp" / f"train-{run_id}"


def training_environment(settings: Settings) -> dict[str, str]:
    """The child's environment: the training thread count for every threading runtime, idle OpenMP threads
    sleeping instead of spinning (a CPU shared with the API would otherwise slow training down many times
    over), and this very code first on its path."""
    return python_child_environment(cpu_threads(settings.train_threads), {"OMP_WAIT_POLICY": "PASSIVE"})


def run_in_child(
    store: Store, settings: Settings, run_id: str, claim: str, stopping: threading.Event
) -> bool:
    """Run one claimed training run in a child process. True when it must be queued again (shutdown)."""
    work = work_dir(settings, run_id)
    work.mkdir(parents=True, exist_ok=True)  # kept from an earlier attempt: training resumes from it
    child_settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})
    with (work / CHILD_LOG).open("wb") as log:
        command = [sys.executable, "-m", "service.jobs.training", run_id, claim]
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
            env=training_environment(settings),
        )
        assert child.stdin is not None
        child.stdin.write(child_settings.model_dump_json().encode())
        child.stdin.close()
        outcome = supervise(child, store, run_id, claim, settings.train_stall_s, stopping)
    if outcome == "shutdown":  # the work folder stays: the next attempt resumes from its checkpoint
        return store.settle("training_runs", run_id, claim, "queued")
    if outcome == "lost":  # another worker has the run now, and the work folder with it
        return False
    if outcome in ("exited", "stalled"):
        progress = (store.get_run(run_id) or {}).get("progress") or {}
        summary = (
            stall_message(progress, settings.train_stall_s)
            if outcome == "stalled"
            else f"the training process exited with code {child.returncode}"
        )
        error = failure_report(summary, work / CHILD_LOG, settings.data_dir)
        store.settle("training_runs", run_id, claim, "failed", error=error)  # no-op if the child settled it
    if (store.get_run(run_id) or {}).get("status") in TERMINAL:  # not when a retry will need them
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(store.dataset_dir(run_id), ignore_errors=True)
    return False


# --- The child process -------------------------------------------------------------------------------


def new_progress(phase: str) -> dict[str, Any]:
    return {"phase": phase, "prepared": 0, "to_prepare": 0, "epoch": 0, "step": 0, "total_steps": 0}


def epoch_metrics(
    epoch: int, loss: float | None, entity_f1: float, relation_f1: float | None
) -> dict[str, Any]:
    return {"epoch": epoch, "loss": loss, "entity_f1": entity_f1, "relation_f1": relation_f1}


class ProgressReporter:
    """The fine-tuning's observer (`model.train.fine_tune.TrainingObserver`): phases and trainer progress
    events -> the run's `progress` (throttled, with the time of the last write) and `metrics` (every
    fine-tuning epoch's end; a pre-training epoch's validation is on recombined pages and says nothing about
    the user's forms)."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.state: dict[str, Any] = new_progress("preparing")
        self.metrics: list[dict[str, Any]] = []
        self.last = 0.0

    def phase(self, name: str) -> None:
        self.state = new_progress(name)
        self._write(None)

    def resumed(self, history: "Sequence[EpochRecord]") -> None:
        """Fine-tuning goes on after the epochs an earlier attempt finished (their checkpoint's history);
        their metrics are the run's first (an empty history: from the start)."""
        self.metrics = [epoch_metrics(h.epoch, h.loss, h.val_f1, h.val_relation_f1) for h in history]
        if history:
            self.state |= {"epoch": history[-1].epoch, "resumed_from_epoch": history[-1].epoch}
        self._write(self.metrics)

    def continue_as(self, phase: str) -> None:
        """The next phase, keeping the counts of the last (a finished run shows its fine-tuning's steps)."""
        self.state["phase"] = phase
        self._write(None)

    def _write(self, metrics: list[dict[str, Any]] | None) -> None:
        self.state["updated"] = now_iso()
        self.store.update_run(self.run_id, self.state, metrics)
        self.last = time.monotonic()

    def progress(self, event: dict[str, float]) -> None:
        self.state["epoch"] = int(event.get("epoch", self.state["epoch"]))
        for name, total in (("prepared", "to_prepare"), ("step", "total_steps")):
            if name in event:
                self.state[name], self.state[total] = int(event[name]), int(event[total])
        if "val_f1" in event:  # an epoch's end: always written
            if self.state["phase"] == "fine-tuning":
                relation = event.get("val_relation_f1", event.get("relation_f1"))
                self.metrics.append(
                    epoch_metrics(int(event["epoch"]), event.get("loss"), event["val_f1"], relation)
                )
            self._write(self.metrics or None)
        elif time.monotonic() - self.last >= PROGRESS_EVERY_S:
            self._write(None)


def base_model_start(settings: Settings, base_model: str) -> "StartPoint":
    """Where a run starts: `minilm`, or the folder of `default` or of a trained model's id."""
    from model.train.start import resolve_start

    if base_model == "minilm":
        return resolve_start("minilm")
    if base_model == "default":
        from model.bundled import bundled_model_dir

        folder = settings.default_model_dir or bundled_model_dir()
    else:
        folder = settings.data_dir / "models" / base_model
    try:
        return resolve_start(str(folder))
    except ValueError as exc:  # the run's error names the model, not where the server keeps it
        raise ValueError(str(exc).replace(str(folder), f"model {base_model!r}")) from None


def train_run(settings: Settings, store: Store, run_id: str) -> str:
    """Train, export and register; returns the new model's id."""
    from model.nn.network import use_threads
    from service.registry import Registry

    use_threads(torch_threads(settings.train_threads))
    reporter = ProgressReporter(store, run_id)
    registered = Registry(settings).model_of_run(run_id)
    if registered is not None:  # an earlier attempt got this far before its worker died
        return registered
    reporter.phase("preparing")
    best = fine_tuned_model(settings, store, run_id, reporter)
    reporter.continue_as("exporting")
    model_id = exported_and_registered(settings, run_id, best)
    reporter.continue_as("finished")
    return model_id


def fine_tuned_model(settings: Settings, store: Store, run_id: str, reporter: ProgressReporter) -> Path:
    """The best epoch's model folder of the run's fine-tuning (after its pre-training phase, if any), in the
    work folder, going on from where an earlier attempt stopped."""
    from model.train.fine_tune import fine_tune
    from model.train.trainer import TrainOptions
    from service.jobs.datasets import dataset_root, validate

    run = store.get_run(run_id)
    assert run is not None
    options = run["options"]
    folder = store.dataset_dir(run_id)
    documents = validate(dataset_root(folder), folder)
    start = base_model_start(settings, options["base_model"])
    train_options = TrainOptions(epochs=options["epochs"], validation_fraction=options["validation_fraction"])
    copies = options.get("recombined_copies", 0)
    work = work_dir(settings, run_id)
    return fine_tune(documents, start, train_options, work, reporter, copies, resume=True)


def exported_and_registered(settings: Settings, run_id: str, best: Path) -> str:
    """Export the trained model to ONNX beside its weights (a base for later runs) and register it."""
    from model.artifact import WEIGHTS_FILE
    from model.train.export import export_onnx
    from service.registry import Registry

    serving = work_dir(settings, run_id) / "serving"
    export_onnx(best, serving)
    shutil.copyfile(best / WEIGHTS_FILE, serving / WEIGHTS_FILE)
    return Registry(settings).add(serving, source_run=run_id)


def watch_parent() -> None:
    """Exit when the parent (the worker) dies, so an orphan never trains on; the lease then runs out."""
    parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=loop, daemon=True).start()


def describe(exc: BaseException) -> str:
    if isinstance(exc, ImportError) and "torch" in str(exc):
        return f"training needs the train extra (torch): {exc}"
    detail = getattr(exc, "detail", None) or str(exc)
    return f"{type(exc).__name__}: {detail}"


def main(argv: list[str]) -> int:
    run_id, claim = argv
    settings = Settings.model_validate_json(sys.stdin.read())
    store = Store(settings.data_dir, settings.sqlite_journal_mode)
    watch_parent()
    try:
        model_id = train_run(settings, store, run_id)
    except Exception as exc:
        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        error = failure_report(describe(exc), Path.cwd() / CHILD_LOG, settings.data_dir)
        store.settle("training_runs", run_id, claim, "failed", error=error)
        return 1
    store.settle("training_runs", run_id, claim, "succeeded", model_id=model_id, error=None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
