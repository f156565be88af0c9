"""Uniform weight averaging of fine-tuned models ("model soup", Wortsman et al. 2022, arXiv 2203.05482).

Models fine-tuned from the same starting weights with different seeds land in one basin of the loss, so the
average of their weights is a model as fast as either one and usually better than both: on FUNSD every soup
measured scored 0.7 to 2.1 points of entity F1 above its better ingredient (BENCHMARKS.md). The ingredients
must share the architecture, label set, vocabulary, input options and starting point; anything else is
refused.
"""

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from model.artifact import TOKENIZER_FILE, ArtifactMeta
from model.dataset import split_validation
from model.funsd import Document
from model.metrics import validation_size_metrics
from model.train.checkpoint import build_network, load_model, save_model
from model.train.evaluate import evaluate_model_on

# ArtifactMeta fields that must be equal across the ingredients, and how to name them in an error
SHARED_FIELDS = {
    "config": "model configuration",
    "label_set": "label set",
    "vocab_sha256": "vocabulary",
    "inputs": "input options (word order, boxes, window)",
    "relation_schema": "relation schema",
}


class SoupError(ValueError):
    """The models cannot be averaged (too few, or not fine-tuned from one starting point)."""


def check_ingredients(directories: Sequence[Path], metas: Sequence[ArtifactMeta]) -> None:
    if len(directories) < 2:
        raise SoupError("averaging needs at least two models")
    if len({Path(d).resolve() for d in directories}) != len(directories):
        raise SoupError("the same model folder is given twice")
    first = metas[0]
    for directory, meta in zip(directories[1:], metas[1:], strict=True):
        for name, what in SHARED_FIELDS.items():
            if getattr(meta, name) != getattr(first, name):
                raise SoupError(f"{directory}: its {what} differs from {directories[0]}'s")
        if not same_start(meta.training.get("init"), first.training.get("init")):
            raise SoupError(
                f"{directory} was fine-tuned from {meta.training.get('init')!r}, {directories[0]} from "
                f"{first.training.get('init')!r}: only models from one starting point average well"
            )


def same_start(first: object, second: object) -> bool:
    """Whether two recorded starting points are one: equal names, or paths to the same folder."""
    if first == second:
        return True
    if isinstance(first, str) and isinstance(second, str) and Path(first).exists():
        return Path(first).resolve() == Path(second).resolve()
    return False


def averaged_state(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the floating-point tensors; integer tensors must be equal."""
    average: dict[str, torch.Tensor] = {}
    for name, first in states[0].items():
        tensors = [state[name] for state in states]
        if first.is_floating_point():
            average[name] = torch.stack([t.float() for t in tensors]).mean(dim=0)
        elif all(torch.equal(first, t) for t in tensors[1:]):
            average[name] = first
        else:
            raise SoupError(f"integer tensor {name!r} differs between the models")
    return average


def shared_validation_split(directories: Sequence[Path], metas: Sequence[ArtifactMeta]) -> tuple[int, float]:
    """The (seed, fraction) every ingredient carved its validation split with; refuses when they differ,
    since then part of each split is another ingredient's training data."""
    splits = {(split_seed(m.training), m.training.get("validation_fraction")) for m in metas}
    seed, fraction = next(iter(splits))
    if len(splits) > 1 or not isinstance(seed, int) or not isinstance(fraction, float) or fraction <= 0:
        raise SoupError(
            f"{', '.join(map(str, directories))} do not share a validation split (seed and fraction: "
            f"{sorted(map(str, splits))}): the average cannot be scored on data none of them trained on"
        )
    return seed, fraction


def split_seed(training: dict) -> object:
    """The seed a run's validation split was drawn with, from its recorded training options."""
    seed = training.get("split_seed")
    return training.get("seed") if seed is None else seed


def validation_metrics(model_dir: Path, documents: Sequence[Document], seed: int, fraction: float) -> dict:
    """Entity (and relation) F1 of a saved model on the validation split `docextract train` carves from
    `documents` with this seed and fraction, under the names training records them by."""
    _, held_out = split_validation([d.name for d in documents], fraction, seed)
    report = evaluate_model_on(model_dir, [documents[i] for i in held_out])
    metrics: dict[str, Any] = {"validation_entity_f1": report.entities.micro.f1}
    if report.relations_gold_entities is not None:
        metrics["validation_relation_f1"] = report.relations_gold_entities.f1
    return metrics | validation_size_metrics(len(held_out))


def average_models(
    directories: Sequence[Path], out: Path, half: bool = False, data: Sequence[Document] | None = None
) -> Path:
    """Write the uniform average of `directories`' models to `out` (a model folder like theirs). With
    `data`, the documents the models were fine-tuned on, the average is scored on their shared validation
    split and the scores are recorded in its metrics."""
    directories = [Path(d) for d in directories]
    metas = [ArtifactMeta.load(d) for d in directories]
    check_ingredients(directories, metas)
    split = shared_validation_split(directories, metas) if data is not None else None
    # load_model checks each tokenizer against its vocab hash and each state against the config
    states = [load_model(directory)[0].state_dict() for directory in directories]
    network = build_network(metas[0])
    network.load_state_dict(averaged_state(states))
    training = {
        "soup_of": [str(d) for d in directories],
        "init": metas[0].training.get("init"),
        "ingredients": [meta.training for meta in metas],
    }
    created = datetime.now(UTC).isoformat(timespec="seconds")
    meta = replace(metas[0], metrics={}, training=training, created=created)
    written = save_model(network, meta, directories[0] / TOKENIZER_FILE, out, half=half)
    if data is not None and split is not None:
        replace(meta, metrics=validation_metrics(written, data, *split)).save(written)
    return written
