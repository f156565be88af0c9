"""A terminal progress bar for long CLI runs (training), with loss and validation F1."""

from types import TracebackType

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class TrainingProgress:
    """Context manager whose `update` takes the trainer's progress events."""

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

    def update(self, event: dict[str, float]) -> None:
        fields = {k: event[k] for k in ("epoch", "loss") if k in event}
        if "val_f1" in event:
            fields["val_f1"] = event["val_f1"]
            epoch, loss, f1 = int(event["epoch"]), event["loss"], event["val_f1"]
            self._progress.console.log(f"epoch {epoch}: loss {loss:.4f}, validation entity F1 {f1:.4f}")
        if "step" in event:
            self._progress.update(self._task, completed=event["step"], total=event["total_steps"], **fields)
        else:
            self._progress.update(self._task, **fields)
