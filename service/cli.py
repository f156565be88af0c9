"""The `docextract` command line. Heavy imports (uvicorn, torch) happen inside the commands."""

from pathlib import Path
from typing import Annotated

import typer

from service import __version__

app = typer.Typer(
    name="docextract",
    help="Self-hosted document extraction: words, entities and key-value pairs from scanned forms.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"docextract {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """docextract command line."""


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default: DOCEXTRACT_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: DOCEXTRACT_PORT or 8000).")] = None,
) -> None:
    """Run the HTTP API on the embedded defaults (local disk, no other server)."""
    import uvicorn

    from service.main import create_app
    from service.settings import get_settings

    settings = get_settings()
    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = settings.model_copy(update=updates)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)


@app.command()
def openapi(
    out: Annotated[Path, typer.Option(help="Where to write the OpenAPI document (YAML).")] = Path(
        "openapi.yaml"
    ),
) -> None:
    """Write the OpenAPI document generated from the application (keeps openapi.yaml true)."""
    from service.openapi_document import render_openapi_yaml

    out.write_text(render_openapi_yaml(), encoding="utf-8")
    typer.echo(f"wrote {out}")


@app.command("validate-data")
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
