import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from model.artifact import ArtifactMeta, InputOptions
from model.config import tiny_config
from model.features import load_tokenizer
from model.funsd import read_dataset
from model.pretrain.data import MaskingRates, pretrain_batch, write_pages
from model.pretrain.heads import OBJECTIVES, LayoutLMv2ForPretraining, pretrain_losses, weighted_total
from model.pretrain.loop import PLACEHOLDER_LABELS, PretrainOptions, prepare_pretrainer, run_pretraining
from model.train.checkpoint import load_model
from model.train.initial_weights import build_model
from model.train.minilm import minilm_tokenizer_path
from model.train.trainer import TrainOptions, prepare_trainer
from tests.model.pretrain.test_data import pretrain_pages

ROOT = Path(__file__).resolve().parents[3]
NO_DROPOUT = tiny_config().with_changes(hidden_dropout=0.0, attention_dropout=0.0)
TINY = PretrainOptions(
    steps=150,
    batch_size=4,
    lr=3e-3,
    lr_new=3e-3,
    init="random",
    checkpoint_every=50,
    rates=MaskingRates(cover_lines=0.3, replace_image=0.25, drop_image=0.25),
    inputs=InputOptions(max_tokens=128, overlap_tokens=32),
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: tiny models are much faster so on a busy machine, and runs are deterministic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pages_dir(tmp_path_factory: pytest.TempPathFactory, synthetic_pages) -> Path:
    root = tmp_path_factory.mktemp("pretrain_pages")
    write_pages(pretrain_pages(synthetic_pages[:2], root), root / "pages.jsonl")
    return root


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, synthetic_pages):
    root = tmp_path_factory.mktemp("pretrain_run")
    pages = pretrain_pages(synthetic_pages[:2], root / "pages")
    records = run_pretraining(pages, root / "pages", root / "out", TINY, NO_DROPOUT)
    return records, root / "out"


def _quarters(records: list[dict[str, float]], name: str) -> tuple[float, float]:
    values = [r[name] for r in records]
    quarter = len(values) // 4
    return float(np.mean(values[:quarter])), float(np.mean(values[-quarter:]))


def test_the_three_losses_decrease_on_two_pages(tiny_run):
    records, _ = tiny_run
    assert [r["step"] for r in records] == list(range(1, TINY.steps + 1))
    first, last = {}, {}
    for name in OBJECTIVES:
        first[name], last[name] = _quarters(records, name)
    assert last["mvlm"] < 0.6 * first["mvlm"], (first, last)
    assert last["tia"] < 0.95 * first["tia"], (first, last)
    assert last["tim"] < 0.9 * first["tim"], (first, last)


def test_every_pretraining_parameter_gets_a_gradient(synthetic_pages, tmp_path: Path):
    torch.manual_seed(0)
    trainer = prepare_pretrainer(
        pretrain_pages(synthetic_pages[:2], tmp_path), tmp_path, tmp_path / "o", TINY, NO_DROPOUT
    )
    model = LayoutLMv2ForPretraining(NO_DROPOUT)
    items = [(0, 0), (1, 0), (0, 1), (1, 1)]
    rng = np.random.default_rng(0)
    arrays = pretrain_batch(trainer.pages, items, rng, trainer.special, NO_DROPOUT.vocab_size, TINY.rates)
    batch = {k: torch.from_numpy(v) for k, v in arrays.items()}
    inputs = {k: batch[k] for k in ("input_ids", "bbox", "attention_mask", "pixel_values", "mlm_labels")}
    losses = pretrain_losses(model(**inputs), batch)
    weighted_total(losses, TINY.weights).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []
    assert set(losses) == set(OBJECTIVES) and all(torch.isfinite(v) for v in losses.values())


def test_a_zero_weight_takes_an_objective_out_of_the_total():
    losses = {"mvlm": torch.tensor(3.0), "tia": torch.tensor(0.5), "tim": torch.tensor(0.25)}
    assert weighted_total(losses, {"mvlm": 1.0, "tia": 0.0, "tim": 2.0}).item() == 3.5


def test_the_output_is_logged_plotted_and_a_model_artifact(tiny_run):
    records, out = tiny_run
    logged = [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]
    assert logged == records and set(OBJECTIVES) <= set(logged[0])
    for name in OBJECTIVES:
        with Image.open(out / f"loss_{name}.png") as plot:
            assert plot.size == (640, 360)
    meta = ArtifactMeta.load(out / "model")
    assert meta.label_set == PLACEHOLDER_LABELS and meta.config == NO_DROPOUT
    assert meta.training["pretraining"]["steps_done"] == TINY.steps
    assert meta.metrics["pretrain_mvlm_loss"] == records[-1]["mvlm"]


def test_a_pretrained_checkpoint_starts_fine_tuning(tiny_run, synthetic_dataset: Path, tmp_path: Path):
    _, out = tiny_run
    pretrained, meta = load_model(out / "model")
    fine_tune_meta = ArtifactMeta(
        meta.config, meta.label_set.from_labels(["question", "answer"]), meta.vocab_sha256
    )
    tagger = build_model(fine_tune_meta, str(out / "model"))  # what `docextract train --init OUT/model` does
    for name, value in pretrained.encoder.state_dict().items():
        torch.testing.assert_close(tagger.encoder.state_dict()[name], value)
    options = TrainOptions(epochs=1, batch_size=2, validation_fraction=0.0, init=str(out / "model"))
    documents = read_dataset(synthetic_dataset)[:1]
    trainer = prepare_trainer(
        documents, tmp_path / "ft", options, meta.config, out / "model" / "tokenizer.json"
    )
    history = trainer.run()
    assert len(history) == 1 and np.isfinite(history[0].loss)
    assert (tmp_path / "ft" / "best" / "model.safetensors").is_file()


class Killed(Exception):
    pass


def _kill_after(step: int):
    def on_progress(event: dict[str, float]) -> None:
        if event["step"] == step:
            raise Killed

    return on_progress


def test_a_killed_run_resumes_from_its_last_checkpoint(synthetic_pages, tmp_path: Path):
    pages = pretrain_pages(synthetic_pages[:2], tmp_path / "pages")
    options = replace(TINY, steps=9, checkpoint_every=4)
    whole = run_pretraining(pages, tmp_path / "pages", tmp_path / "whole", options, NO_DROPOUT)
    with pytest.raises(Killed):  # killed after step 5 was logged: the checkpoint is at step 4
        run_pretraining(
            pages, tmp_path / "pages", tmp_path / "out", options, NO_DROPOUT, on_progress=_kill_after(5)
        )
    assert len((tmp_path / "out" / "losses.jsonl").read_text().splitlines()) == 5
    resumed = run_pretraining(pages, tmp_path / "pages", tmp_path / "out", options, NO_DROPOUT)
    assert [r["step"] for r in resumed] == list(range(1, 10))
    for name in OBJECTIVES:
        assert [r[name] for r in resumed] == pytest.approx([r[name] for r in whole], rel=1e-4)


def test_more_steps_continue_a_finished_run(synthetic_pages, tmp_path: Path):
    pages = pretrain_pages(synthetic_pages[:2], tmp_path / "pages")
    run_pretraining(pages, tmp_path / "pages", tmp_path / "out", replace(TINY, steps=3), NO_DROPOUT)
    longer = run_pretraining(pages, tmp_path / "pages", tmp_path / "out", replace(TINY, steps=6), NO_DROPOUT)
    assert [r["step"] for r in longer] == list(range(1, 7))
    assert all(r["lr_scale"] > 0 for r in longer)  # the decay now ends at step 6, not 3
    assert longer[-1]["lr_scale"] < longer[-2]["lr_scale"] < longer[-3]["lr_scale"]


def test_a_budget_ends_the_run_and_still_saves_the_model(synthetic_pages, tmp_path: Path):
    pages = pretrain_pages(synthetic_pages[:2], tmp_path / "pages")
    options = replace(TINY, steps=1000, budget_seconds=1e-6)
    records = run_pretraining(pages, tmp_path / "pages", tmp_path / "out", options, NO_DROPOUT)
    assert [r["step"] for r in records] == [1]
    assert ArtifactMeta.load(tmp_path / "out" / "model").training["pretraining"]["steps_done"] == 1


def test_two_processes_under_torchrun(pages_dir: Path, tmp_path: Path):
    torchrun = Path(sys.executable).parent / "torchrun"
    command = [
        "nice",
        "-n",
        "10",
        str(torchrun),
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "model.pretrain.loop",
    ]
    command += ["--pages", str(pages_dir / "pages.jsonl"), "--out", str(tmp_path / "out"), "--size", "tiny"]
    command += [
        "--init",
        "random",
        "--steps",
        "4",
        "--batch-size",
        "1",
        "--checkpoint-every",
        "2",
        "--max-tokens",
        "128",
    ]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "out" / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]  # rank 0 alone logs
    meta = ArtifactMeta.load(tmp_path / "out" / "model")
    assert meta.training["pretraining"]["processes"] == 2
    load_model(tmp_path / "out" / "model")
    assert load_tokenizer(tmp_path / "out" / "model" / "tokenizer.json").get_vocab_size() == 30522
    assert minilm_tokenizer_path().is_file()
