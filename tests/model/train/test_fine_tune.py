"""The one fine-tuning entry point, on a tiny model trained for real on the synthetic forms."""

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from model.artifact import WEIGHTS_FILE, InputOptions
from model.funsd import read_dataset
from model.train.fine_tune import PRETRAIN_FOLDER, fine_tune, history_of
from model.train.start import resolve_start
from model.train.trainer import EpochRecord, TrainOptions

OPTIONS = TrainOptions(epochs=1, batch_size=2, validation_fraction=0.25)


class Recorder:
    """An observer that keeps what it is told."""

    def __init__(self) -> None:
        self.phases: list[str] = []
        self.events: list[tuple[str, dict[str, float]]] = []
        self.histories: list[list[int]] = []

    def phase(self, name: str) -> None:
        self.phases.append(name)

    def progress(self, event: dict[str, float]) -> None:
        self.events.append((self.phases[-1], event))

    def resumed(self, history: Sequence[EpochRecord]) -> None:
        self.histories.append([record.epoch for record in history])


def test_recombined_pretraining_then_fine_tuning_and_a_resume_that_reuses_the_pretraining(
    synthetic_dataset: Path, tmp_path: Path
):
    documents = read_dataset(synthetic_dataset)
    inputs = InputOptions(word_order="annotation")
    start = replace(resolve_start("random", "tiny"), inputs=inputs)
    out, first = tmp_path / "run", Recorder()
    best = fine_tune(documents, start, OPTIONS, out, first, recombined_copies=2)
    assert first.phases == ["pretraining", "fine-tuning"] and first.histories == []  # not resuming
    assert {phase for phase, _ in first.events} == {"pretraining", "fine-tuning"}
    assert best == out / "best" and (best / WEIGHTS_FILE).is_file()
    pretrained = out / PRETRAIN_FOLDER / "best"
    pretraining = json.loads((out / PRETRAIN_FOLDER / "history.json").read_text())["options"]
    assert (pretraining["init"], pretraining["epochs"], pretraining["inputs"]) == ("random", 1, vars(inputs))
    fine_tuning = json.loads((out / "history.json").read_text())["options"]
    assert (fine_tuning["init"], fine_tuning["inputs"]) == (str(pretrained), vars(inputs))
    pretrained_at = (pretrained / WEIGHTS_FILE).stat().st_mtime_ns

    again = Recorder()
    fine_tune(documents, start, replace(OPTIONS, epochs=2), out, again, recombined_copies=2, resume=True)
    assert again.phases == ["fine-tuning"] and again.histories == [[1]]  # on from epoch 1
    assert (pretrained / WEIGHTS_FILE).stat().st_mtime_ns == pretrained_at  # reused, not redone
    assert [record.epoch for record in history_of(out)] == [1, 2]


def test_without_an_observer_or_recombined_copies_it_just_fine_tunes(synthetic_dataset: Path, tmp_path: Path):
    best = fine_tune(read_dataset(synthetic_dataset), resolve_start("random", "tiny"), OPTIONS, tmp_path)
    assert (best / WEIGHTS_FILE).is_file() and not (tmp_path / PRETRAIN_FOLDER).exists()
    assert [record.epoch for record in history_of(tmp_path)] == [1]
