"""`docextract average`: the uniform weight average ("model soup") of models fine-tuned from one start."""

from pathlib import Path
from typing import Annotated

import typer


def average(
    models: Annotated[
        list[Path],
        typer.Argument(
            exists=True, file_okay=False, help="Two or more trained model folders, fine-tuned from one start."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Model folder to write the average into.")],
    half: Annotated[bool, typer.Option(help="Store the weights in fp16 (half the size).")] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            file_okay=False,
            help="The labelled folder the models were fine-tuned on: the average is scored on their shared "
            "validation split and the scores recorded in its metrics (shown by GET /v1/models).",
        ),
    ] = None,
) -> None:
    """Average the weights of models fine-tuned from the same starting model with different seeds (needs the
    train extra). The average is as fast as one model and usually scores above each of them."""
    from model.artifact import ArtifactMeta
    from model.funsd import read_dataset
    from model.train.soup import average_models

    if out.resolve() in {m.resolve() for m in models}:
        raise typer.BadParameter("--out must not be one of the averaged models", param_hint="--out")
    try:
        documents = read_dataset(data) if data is not None else None
        written = average_models(models, out, half=half, data=documents)
    except (ValueError, FileNotFoundError) as exc:  # SoupError, a folder that is not a model or dataset
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    metrics = ArtifactMeta.load(written).metrics
    scores = ", ".join(f"{name} {value:.4f}" for name, value in metrics.items() if isinstance(value, float))
    typer.echo(f"wrote {written}" + (f" ({scores})" if scores else ""))
