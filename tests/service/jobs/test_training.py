"""The training child's parts: progress by phase, and the pre-training on recombined copies (real SQLite
store, real training of a tiny model)."""

import time
from pathlib import Path

import pytest

from model.artifact import WEIGHTS_FILE, InputOptions
from model.funsd import read_dataset
from model.train.fine_tune import recombined_start
from model.train.start import resolve_start
from model.train.trainer import TrainOptions
from service.jobs.training import PROGRESS_EVERY_S, ProgressReporter, base_model_start
from service.settings import Settings
from service.store import Store
from tests.fixtures.models import untrained_model_folder

RUN_ID = "run_" + "1" * 32


def counts(progress: dict) -> dict:
    return {name: progress[name] for name in ("phase", "epoch", "step", "total_steps")}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A store with one claimed (running) training run, `RUN_ID`."""
    store = Store(tmp_path / "data")
    store.init()
    options = {"base_model": "minilm", "epochs": 1, "validation_fraction": 0.25, "recombined_copies": 2}
    store.create_run(RUN_ID, options | {"documents": 4})
    assert store.claim("training_runs", RUN_ID, "claim", 60) is not None
    return store


def test_pretraining_reports_progress_but_keeps_its_validation_out_of_the_metrics(store: Store):
    reporter = ProgressReporter(store, RUN_ID)
    reporter.phase("pretraining")
    reporter.progress({"epoch": 1, "step": 3, "total_steps": 3})
    reporter.progress({"epoch": 1, "loss": 0.5, "val_f1": 0.9})
    run = store.get_run(RUN_ID)
    assert counts(run["progress"]) == {"phase": "pretraining", "epoch": 1, "step": 3, "total_steps": 3}
    assert run["progress"]["updated"] and not run["metrics"]
    reporter.phase("fine-tuning")
    reporter.progress({"prepared": 2, "to_prepare": 4})
    time.sleep(PROGRESS_EVERY_S)
    reporter.progress({"prepared": 4, "to_prepare": 4})
    progress = store.get_run(RUN_ID)["progress"]
    assert counts(progress) == {"phase": "fine-tuning", "epoch": 0, "step": 0, "total_steps": 0}
    assert (progress["prepared"], progress["to_prepare"]) == (4, 4)
    reporter.progress({"epoch": 1, "loss": 0.4, "val_f1": 0.5, "val_relation_f1": 0.25})
    (epoch,) = store.get_run(RUN_ID)["metrics"]
    assert (epoch["epoch"], epoch["entity_f1"], epoch["relation_f1"]) == (1, 0.5, 0.25)


def test_recombined_pretraining_takes_one_pass_and_returns_a_model_to_fine_tune_from(
    store: Store, synthetic_dataset: Path, tmp_path: Path
):
    reporter = ProgressReporter(store, RUN_ID)
    options = TrainOptions(epochs=5, batch_size=2, validation_fraction=0.25)
    start = resolve_start("random", "tiny")
    pretrained = recombined_start(read_dataset(synthetic_dataset), 2, start, options, tmp_path, reporter)
    assert (Path(pretrained.init) / WEIGHTS_FILE).is_file()
    progress = store.get_run(RUN_ID)["progress"]
    assert progress["phase"] == "pretraining" and progress["epoch"] == 1  # one pass, not the run's 5 epochs
    assert progress["step"] == progress["total_steps"] > 0
    assert not store.get_run(RUN_ID)["metrics"]


def test_a_run_starts_from_its_base_model_named_by_its_id_in_errors(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data")
    lines = InputOptions(box_level="line")
    untrained_model_folder(settings.data_dir / "models" / "mdl_trained", lines)
    start = base_model_start(settings, "mdl_trained")
    assert start.inputs == lines and start.init == str(settings.data_dir / "models" / "mdl_trained")
    assert base_model_start(settings, "minilm").init == "minilm"
    (settings.data_dir / "models" / "mdl_trained" / WEIGHTS_FILE).unlink()
    with pytest.raises(ValueError) as refused:
        base_model_start(settings, "mdl_trained")
    assert str(refused.value) == f"model 'mdl_trained' has no trained weights ({WEIGHTS_FILE}) to start from"
