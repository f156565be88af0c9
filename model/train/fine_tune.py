"""One fine-tuning, whoever asks for it (`docextract train`, training runs through the API, the benchmarks):
optionally one pass of pre-training on recombined copies of the training forms into `OUT/pretrain`
(`model.pretrain.recombined`), then fine-tuning into OUT (`best/`, `last/`, `history.json`), telling an
observer what happens."""

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from model.artifact import META_FILE
from model.funsd import Document
from model.pretrain.recombined import finished_pretraining, pretrain_on_pages, recombined_pages
from model.train.start import StartPoint
from model.train.trainer import HISTORY_FILE, EpochRecord, ProgressCallback, TrainOptions, prepare_trainer

PRETRAIN_FOLDER = "pretrain"  # OUT/pretrain: the recombined pre-training, where fine-tuning then starts


class TrainingObserver(Protocol):
    def phase(self, name: str) -> None:
        """A phase begins: "pretraining" (not when an earlier one is reused), then "fine-tuning"."""

    def progress(self, event: dict[str, float]) -> None:
        """A trainer progress event (pages prepared, steps, an epoch's end with its validation F1)."""

    def resumed(self, history: Sequence[EpochRecord]) -> None:
        """Fine-tuning goes on after these epochs of an earlier attempt (empty: from the start); told only
        when resuming."""


@dataclass
class ProgressOnly:
    """An observer that hands progress events to one callable (none: ignores everything)."""

    on_progress: ProgressCallback | None = None

    def phase(self, name: str) -> None:
        pass

    def progress(self, event: dict[str, float]) -> None:
        if self.on_progress:
            self.on_progress(event)

    def resumed(self, history: Sequence[EpochRecord]) -> None:
        pass


def recombined_start(
    documents: Sequence[Document],
    copies: int,
    start: StartPoint,
    options: TrainOptions,
    folder: Path,
    observer: TrainingObserver,
    reuse: bool = False,
) -> StartPoint:
    """Where fine-tuning starts after one pass over `copies` recombined copies of the forms it trains on,
    from `start`, written to `folder`; with `reuse`, an earlier pre-training there that finished is kept."""
    earlier = finished_pretraining(folder) if reuse else None
    if earlier is None:
        observer.phase("pretraining")
        pages = recombined_pages(documents, copies, options)
        fine_tuning = start.applied_to(options)
        earlier = pretrain_on_pages(
            pages, fine_tuning, start.config, start.tokenizer, folder, on_progress=observer.progress
        )
    return replace(start, init=str(earlier))


def fine_tune(
    documents: Sequence[Document],
    start: StartPoint,
    options: TrainOptions,
    out: Path,
    observer: TrainingObserver | None = None,
    recombined_copies: int = 0,
    resume: bool = False,
) -> Path:
    """Fine-tune from `start` (its init and input options replace those of `options`) into `out`, after
    pre-training on `recombined_copies` copies of each training form when asked; with `resume`, go on from
    `out/last` and reuse a finished pre-training. Returns the best epoch's model folder."""
    observer = observer or ProgressOnly()
    out = Path(out)
    if recombined_copies:
        folder = out / PRETRAIN_FOLDER
        start = recombined_start(documents, recombined_copies, start, options, folder, observer, resume)
    observer.phase("fine-tuning")
    tuning = start.applied_to(options)
    trainer = prepare_trainer(
        documents, out, tuning, start.config, start.tokenizer, on_progress=observer.progress
    )
    done = trainer.resume() if resume else 0
    if resume:
        observer.resumed(trainer.history)
    trainer.run(done)
    best = out / "best"
    if not (best / META_FILE).is_file():
        raise RuntimeError("training ended before any epoch finished: no model to keep")
    return best


def history_of(out: Path) -> list[EpochRecord]:
    """The epochs a fine-tuning into `out` finished (its `history.json`)."""
    payload = json.loads((Path(out) / HISTORY_FILE).read_text(encoding="utf-8"))
    return [EpochRecord(**record) for record in payload["history"]]
