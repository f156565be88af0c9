"""`docextract` commands that make or check FUNSD-format data: validate-data, synth, recombine."""

from pathlib import Path
from typing import Annotated

import typer


def validate_data(
    data: Annotated[Path, typer.Argument(help="FUNSD-format folder with annotations/ and images/.")],
    labels: Annotated[
        str | None, typer.Option(help="Comma-separated allowed labels (default: any label found).")
    ] = None,
) -> None:
    """Check a FUNSD-format dataset and print its statistics, or the first error with file and entity."""
    from model.funsd import FunsdFormatError, read_dataset

    label_set = frozenset(x.strip() for x in labels.split(",")) if labels else None
    try:
        documents = read_dataset(data, labels=label_set)
    except FunsdFormatError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    entities = [e for d in documents for e in d.entities]
    counts: dict[str, int] = {}
    for entity in entities:
        counts[entity.label] = counts.get(entity.label, 0) + 1
    words = sum(len(e.words) for e in entities)
    links = sum(len(d.links) for d in documents)
    typer.echo(f"{len(documents)} documents, {len(entities)} entities, {words} words, {links} links")
    for label, count in sorted(counts.items()):
        typer.echo(f"  {label}: {count}")


def synth(
    out: Annotated[Path, typer.Option(help="FUNSD-format folder to write (annotations/, images/).")],
    n: Annotated[int, typer.Option(min=1, help="Number of pages.")] = 1000,
    seed: Annotated[int, typer.Option(help="Corpus seed; page i depends only on (seed, i, schema).")] = 0,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes (default: CPU count).")] = None,
    schema: Annotated[
        str, typer.Option(help="Labels: funsd (header/question/answer/other) or invoice.")
    ] = "funsd",
) -> None:
    """Generate synthetic scanned form pages with exact FUNSD-format ground truth (needs the train extra:
    faker). Resumable: pages already in OUT are skipped."""
    from model.synth.corpus import stderr_progress, write_corpus

    try:
        progress = write_corpus(out, n, seed, workers, schema, on_progress=stderr_progress)
    except (ValueError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"{progress.done} pages in {out}: {progress.written} new, {progress.skipped} already there")


def recombine(
    source: Annotated[Path, typer.Argument(help="FUNSD-format folder of labelled forms.")],
    out: Annotated[Path, typer.Option(help="FUNSD-format folder to write (annotations/, images/).")],
    variants: Annotated[int, typer.Option(min=1, help="Recombined copies of each form.")] = 50,
    seed: Annotated[int, typer.Option(help="Corpus seed.")] = 0,
    leave_out_split_seed: Annotated[
        int | None,
        typer.Option(help="Leave out the forms that `train --split-seed S` holds out for validation."),
    ] = None,
) -> None:
    """Synthetic pages on your own forms' layouts, for pre-training: in each copy every entity's words are
    swapped for those of another form's entity with the same label and word count (boxes, labels, links
    and images stay). See BENCHMARKS.md, "Recombined pages"."""
    from model.funsd import FunsdFormatError
    from model.synth.recombine import write_recombined

    try:
        pages = write_recombined(source, out, variants, seed, leave_out_split_seed)
    except (FunsdFormatError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    typer.echo(f"{pages} pages in {out}")
