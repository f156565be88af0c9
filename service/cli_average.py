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
) -> None:
    """Average the weights of models fine-tuned from the same starting model with different seeds (needs the
    train extra). The average is as fast as one model and usually scores above each of them."""
    from model.soup import average_models

    if out.resolve() in {m.resolve() for m in models}:
        raise typer.BadParameter("--out must not be one of the averaged models", param_hint="--out")
    try:
        written = average_models(models, out, half=half)
    except (ValueError, FileNotFoundError) as exc:  # SoupError, or a folder that is not a model
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"wrote {written}")
