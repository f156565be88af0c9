"""`docextract train`: fine-tune the entity (and relation) heads on FUNSD-format data, optionally after one
pass of pre-training on recombined copies of the same forms (as `recombined_copies` does for training runs
through the API)."""

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.jobs.training import MAX_RECOMBINED_COPIES

if TYPE_CHECKING:
    from model.config import ModelConfig
    from model.funsd import Document
    from model.train.trainer import TrainOptions

PRETRAIN_FOLDER = "pretrain"  # OUT/pretrain/best: the recombined pre-training, where fine-tuning starts


def config_for(size: str, init: str) -> "ModelConfig":
    from model.artifact import ArtifactMeta
    from model.config import base_config, minilm_config, tiny_config

    if init not in ("minilm", "random"):
        return ArtifactMeta.load(Path(init)).config
    presets = {"minilm": minilm_config, "base": base_config, "tiny": tiny_config}
    if size not in presets:
        raise typer.BadParameter(f"size must be one of {sorted(presets)}")
    if size != "minilm" and init == "minilm":
        raise typer.BadParameter("only the minilm size can start from MiniLM; use --init random")
    return presets[size]()


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


def recombined_start(
    documents: "list[Document]",
    copies: int,
    options: "TrainOptions",
    config: "ModelConfig",
    tokenizer: Path,
    out: Path,
    resume: bool,
) -> "TrainOptions":
    """`options` starting from one pass over `copies` recombined copies of the held-in forms, written to
    OUT/pretrain (kept and reused by `--resume`)."""
    from model.pretrain.recombined import finished_pretraining, pretrain_on_pages, recombined_pages
    from service.cli.progress import TrainingProgress

    folder = out / PRETRAIN_FOLDER
    earlier = finished_pretraining(folder) if resume else None
    if earlier is not None:
        typer.echo(f"resuming: fine-tuning starts from the earlier pre-training in {earlier}")
        return replace(options, init=str(earlier))
    pages = recombined_pages(documents, copies, options)
    typer.echo(f"pre-training for one pass over {len(pages)} recombined pages ({copies} copies)")
    with TrainingProgress() as progress:
        start = pretrain_on_pages(pages, options, config, tokenizer, folder, on_progress=progress.update)
    typer.echo(f"pre-trained model in {start}; fine-tuning from it")
    return replace(options, init=str(start))


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
        str, typer.Option(help="'minilm', 'random', or a model folder to start from.")
    ] = "minilm",
    size: Annotated[
        str, typer.Option(help="Model size: minilm, base or tiny (with --init random).")
    ] = "minilm",
    word_order: Annotated[str, typer.Option(help="'reading' (as OCR gives) or 'annotation'.")] = "reading",
    box_level: Annotated[str, typer.Option(help="'word' or 'line' boxes.")] = "word",
    no_visual: Annotated[bool, typer.Option(help="Ablation: no visual tokens.")] = False,
    no_spatial_bias: Annotated[bool, typer.Option(help="Ablation: no spatial-aware attention bias.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/last if present.")] = False,
    bf16: Annotated[
        bool,
        typer.Option(help="Training steps under bfloat16 autocast (faster on CPUs with AVX512-BF16/AMX)."),
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
    from model.artifact import InputOptions
    from model.train.minilm import minilm_tokenizer_path
    from model.train.trainer import TrainOptions, prepare_trainer
    from service.cli.progress import TrainingProgress

    if word_order not in ("reading", "annotation") or box_level not in ("word", "line"):
        raise typer.BadParameter("word-order must be reading|annotation and box-level word|line")
    config = config_for(size, init).with_changes(
        use_visual=not no_visual, use_spatial_bias=not no_spatial_bias
    )
    options = TrainOptions(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        lr_new=lr_new,
        seed=seed,
        validation_fraction=validation_fraction,
        split_seed=split_seed,
        budget_seconds=budget_minutes * 60 if budget_minutes else None,
        init=init,
        inputs=InputOptions(word_order=word_order, box_level=box_level),
        relations=relations,
        relation_pairs=parse_pairs(relation_pairs),
        bf16=bf16,
    )
    documents = read_training_data(data)
    tokenizer = Path(init) / "tokenizer.json" if init not in ("minilm", "random") else minilm_tokenizer_path()
    if recombined_copies:
        options = recombined_start(documents, recombined_copies, options, config, tokenizer, out, resume)
    with TrainingProgress() as progress:
        trainer = prepare_trainer(documents, out, options, config, tokenizer, on_progress=progress.update)
        start = trainer.resume() if resume else 0
        history = trainer.run(start)
    best = max(history, key=lambda h: h.val_f1, default=None)
    if best is not None:
        typer.echo(
            f"best validation entity F1 {best.val_f1:.4f} at epoch {best.epoch}; model in {out / 'best'}"
        )
