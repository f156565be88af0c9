"""`docextract train`: fine-tune the entity (and relation) heads on FUNSD-format data, optionally after one
pass of pre-training on recombined copies of the same forms (as `recombined_copies` does for training runs
through the API)."""

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.progress import TrainingProgress
from service.jobs.training import MAX_RECOMBINED_COPIES, base_model_start

DEFAULT_START = "default"  # as a training run's `base_model`

if TYPE_CHECKING:
    from model.artifact import InputOptions
    from model.funsd import Document
    from model.train.start import StartPoint


def start_for(init: str, size: str) -> "StartPoint":
    """`--init` and `--size` resolved (`model.train.start`); `default` is the model training runs start
    from by default (`DOCEXTRACT_DEFAULT_MODEL_DIR`, else the bundled model). A start that cannot be is a
    usage error."""
    from model.train.start import FRESH_STARTS, resolve_start
    from service.settings import get_settings

    try:
        if init == DEFAULT_START:
            return base_model_start(get_settings(), DEFAULT_START)
        return resolve_start(init, size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--size" if init in FRESH_STARTS else "--init") from exc


def chosen_inputs(own: "InputOptions", word_order: str | None, box_level: str | None) -> "InputOptions":
    """The start's own input options (its weights learned with them), but for those given on the command
    line."""
    if word_order not in (None, "reading", "annotation") or box_level not in (None, "word", "line"):
        raise typer.BadParameter("word-order must be reading|annotation and box-level word|line")
    given = {"word_order": word_order, "box_level": box_level}
    return replace(own, **{name: value for name, value in given.items() if value is not None})


def parse_pairs(text: str | None) -> tuple[tuple[str, str], ...] | None:
    if not text:
        return None
    pairs = [item.split(":") for item in text.split(",")]
    if any(len(p) != 2 or not all(p) for p in pairs):
        raise typer.BadParameter("relation pairs look like 'question:answer,header:question'")
    return tuple((a.strip(), b.strip()) for a, b in pairs)


def read_training_data(data: Path) -> "list[Document]":
    from model.funsd import FunsdFormatError, read_dataset

    try:
        return read_dataset(data)
    except FunsdFormatError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc


class TrainReport(TrainingProgress):
    """The progress bar, saying where `docextract train --recombined-copies` pre-trains and where its
    fine-tuning starts."""

    def __init__(self, out: Path, copies: int) -> None:
        from model.train.fine_tune import PRETRAIN_FOLDER

        super().__init__()
        self.folder, self.copies = out / PRETRAIN_FOLDER, copies
        self.current = ""
        self.announced = False

    def phase(self, name: str) -> None:
        if name == "fine-tuning" and self.copies:
            if self.current == "pretraining":
                typer.echo(f"pre-trained model in {self.folder}; fine-tuning from it")
            else:
                typer.echo(f"resuming: fine-tuning starts from the earlier pre-training in {self.folder}")
        self.current = name
        super().phase(name)

    def progress(self, event: dict[str, float]) -> None:
        if self.current == "pretraining" and "to_prepare" in event and not self.announced:
            pages = int(event["to_prepare"])
            typer.echo(f"pre-training for one pass over {pages} recombined pages ({self.copies} copies)")
            self.announced = True
        super().progress(event)


def train(
    data: Annotated[Path, typer.Option(help="FUNSD-format training folder (annotations/, images/).")],
    out: Annotated[
        Path, typer.Option(help="Output folder: best/ (the model), last/ (resume state), history.")
    ],
    epochs: Annotated[int, typer.Option(min=1)] = 30,
    batch_size: Annotated[int, typer.Option(min=1)] = 4,
    lr: Annotated[float, typer.Option(help="Learning rate of the pretrained text stream.")] = 1e-4,
    lr_new: Annotated[
        float, typer.Option(help="Learning rate of new parameters (layout, visual, heads).")
    ] = 1e-3,
    seed: int = 42,
    validation_fraction: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.1,
    split_seed: Annotated[
        int | None,
        typer.Option(help="Seed of the validation split (default: --seed); runs you will average share one."),
    ] = None,
    budget_minutes: Annotated[
        float | None,
        typer.Option(help="Stop after this wall-clock time (each phase: pre-training, fine-tuning)."),
    ] = None,
    init: Annotated[
        str,
        typer.Option(
            help="Start from 'default' (the served default model, as training runs do: "
            "DOCEXTRACT_DEFAULT_MODEL_DIR, else the bundled one), 'minilm', 'random', or a model folder."
        ),
    ] = DEFAULT_START,
    size: Annotated[
        str, typer.Option(help="Model size with --init minilm or random: minilm, or base or tiny (random).")
    ] = "minilm",
    word_order: Annotated[
        str | None,
        typer.Option(
            help="'reading' (as OCR gives) or 'annotation'. Default: the start's own (a model folder's, "
            "else reading)."
        ),
    ] = None,
    box_level: Annotated[
        str | None,
        typer.Option(help="'word' or 'line' boxes. Default: the start's own (a model folder's, else word)."),
    ] = None,
    no_visual: Annotated[bool, typer.Option("--no-visual", help="Ablation: no visual tokens.")] = False,
    no_spatial_bias: Annotated[
        bool, typer.Option("--no-spatial-bias", help="Ablation: no spatial-aware attention bias.")
    ] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last if present.")] = False,
    bf16: Annotated[
        bool,
        typer.Option(
            "--bf16", help="Training steps under bfloat16 autocast (faster on CPUs with AVX512-BF16/AMX)."
        ),
    ] = False,
    relations: Annotated[bool, typer.Option(help="Train the relation head when the data has links.")] = True,
    relation_pairs: Annotated[
        str | None,
        typer.Option(help="Linkable label pairs, e.g. 'question:answer' (default: from the links)."),
    ] = None,
    recombined_copies: Annotated[
        int,
        typer.Option(
            min=0,
            max=MAX_RECOMBINED_COPIES,
            help="First pre-train for one pass over this many recombined copies of the training forms "
            "(validation forms left out; model in OUT/pretrain), then fine-tune from it. 0: off.",
        ),
    ] = 0,
) -> None:
    """Fine-tune the entity tagger on FUNSD-format data; the best validation epoch goes to OUT/best."""
    from model.train.fine_tune import fine_tune, history_of
    from model.train.trainer import TrainOptions

    start = start_for(init, size)
    config = start.config.with_changes(use_visual=not no_visual, use_spatial_bias=not no_spatial_bias)
    start = replace(start, config=config, inputs=chosen_inputs(start.inputs, word_order, box_level))
    options = TrainOptions(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        lr_new=lr_new,
        seed=seed,
        validation_fraction=validation_fraction,
        split_seed=split_seed,
        budget_seconds=budget_minutes * 60 if budget_minutes else None,
        relations=relations,
        relation_pairs=parse_pairs(relation_pairs),
        bf16=bf16,
    )
    documents = read_training_data(data)
    with TrainReport(out, recombined_copies) as report:
        best_model = fine_tune(documents, start, options, out, report, recombined_copies, resume)
    best = max(history_of(out), key=lambda h: h.val_f1)
    typer.echo(f"best validation entity F1 {best.val_f1:.4f} at epoch {best.epoch}; model in {best_model}")
