"""A terminal progress bar for long CLI runs (training), with loss and validation F1."""

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

if TYPE_CHECKING:
    from model.train.trainer import EpochRecord


class TrainingProgress:
    """Context manager observing a training (`model.train.fine_tune.TrainingObserver`): `progress` takes the
    trainer's (or the pre-training loop's) progress events, `phase` starts the bar again."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  val F1 {task.fields[val_f1]:.4f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        self._task = self._progress.add_task(
            "train", total=None, epoch=0, loss=float("nan"), val_f1=float("nan")
        )

    def __enter__(self) -> "TrainingProgress":
        self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._progress.stop()

    def phase(self, name: str) -> None:
        self._progress.reset(self._task, total=None, epoch=0, loss=float("nan"), val_f1=float("nan"))

    def resumed(self, history: "Sequence[EpochRecord]") -> None:
        if history:
            self._progress.console.log(f"resuming after epoch {history[-1].epoch}")

    def progress(self, event: dict[str, float]) -> None:
        fields = {k: event[k] for k in ("epoch", "loss") if k in event}
        if "val_f1" in event:
            fields["val_f1"] = event["val_f1"]
            epoch, loss, f1 = int(event["epoch"]), event["loss"], event["val_f1"]
            self._progress.console.log(f"epoch {epoch}: loss {loss:.4f}, validation entity F1 {f1:.4f}")
        if "step" in event:
            self._progress.update(self._task, completed=event["step"], total=event["total_steps"], **fields)
        else:
            self._progress.update(self._task, **fields)
