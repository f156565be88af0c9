"""The `docextract` command line. Heavy imports (uvicorn, torch) happen inside the commands."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service import __version__
from service.cli.average import average
from service.cli.data import recombine, synth, validate_data
from service.cli.train import start_for, train

if TYPE_CHECKING:
    from service.settings import Settings

app = typer.Typer(
    name="docextract",
    help="Self-hosted document extraction: words, entities and key-value pairs from scanned forms.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help (click's), readable at any width: no boxes, no wrapped tables
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

    from service.logs import configure_logging
    from service.main import create_app
    from service.settings import get_settings

    settings = get_settings()
    updates = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = settings.model_copy(update=updates)
    configure_logging(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's records go through `configure_logging`'s handler
        access_log=False,  # service.api.request_context writes the access records (with request ids)
    )


@app.command()
def worker(
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues to consume: documents, training.")
    ] = "documents,training",
    workers: Annotated[
        int | None, typer.Option(min=1, help="Documents at once (default: DOCEXTRACT_QUEUE_WORKERS).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve this worker's Prometheus metrics at :PORT/metrics.")
    ] = None,
) -> None:
    """Consume the job queue (huey's consumer): documents of jobs and training runs. Run one or more per
    machine with DOCEXTRACT_REDIS_URL set and the data directory on a shared volume."""
    import signal
    import threading

    from service.deps import build_services
    from service.jobs.queue import QUEUES
    from service.logs import configure_logging
    from service.settings import get_settings

    chosen = tuple(q.strip() for q in queues.split(",") if q.strip())
    if not chosen or set(chosen) - set(QUEUES):
        raise typer.BadParameter(f"queues must be among {', '.join(QUEUES)}", param_hint="--queues")
    settings = get_settings()
    configure_logging(settings)
    services = build_services(settings)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    services.queue.start(chosen, workers)
    threading.Thread(target=services.registry.warm, daemon=True).start()
    if metrics_port:
        from service.api.routes.health import gauges
        from service.metrics import start_metrics_server

        start_metrics_server(lambda: services.metrics.render(gauges(services)), settings.host, metrics_port)
    typer.echo(f"docextract worker: consuming {', '.join(chosen)} ({services.queue.mode} queue)", err=True)
    stop.wait()
    typer.echo("docextract worker: stopping (running tasks get 30 s)", err=True)
    services.queue.stop()


@app.command()
def openapi(
    out: Annotated[Path, typer.Option(help="Where to write the OpenAPI document (YAML).")] = Path(
        "openapi.yaml"
    ),
) -> None:
    """Write the OpenAPI document generated from the application (keeps openapi.yaml true)."""
    from service.api.openapi_document import render_openapi_yaml

    out.write_text(render_openapi_yaml(), encoding="utf-8")
    typer.echo(f"wrote {out}")


app.command()(train)


def _pretraining_corpus(images: list[Path], out: Path, settings: "Settings") -> Path:
    """OCR the images (or read the cache) into OUT/pages.jsonl, with a one-line summary."""
    from service.cli.pretraining import build_corpus

    pages_file, stats = build_corpus(images, out, settings)
    typer.echo(
        f"{stats.files} files ({stats.cached} from the OCR cache, {stats.skipped} skipped): "
        f"{stats.pages} pages, {stats.words} words in {pages_file}",
        err=True,
    )
    return pages_file


@app.command()
def pretrain(
    images: Annotated[
        list[Path],
        typer.Option(help="Folder of page images (png, jpg, tif; FUNSD folders: their images). Repeatable."),
    ],
    out: Annotated[
        Path, typer.Option(help="Output: model/ (for train --init), last/, losses.jsonl, loss_*.png, ocr/.")
    ],
    steps: Annotated[int, typer.Option(min=0, help="Optimizer steps; 0: OCR the pages only.")] = 10000,
    budget_minutes: Annotated[float | None, typer.Option(help="Stop after this wall-clock time.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 4,
    init: Annotated[
        str, typer.Option(help="'minilm', 'random', 'default' (the served default model) or a model folder.")
    ] = "minilm",
    size: Annotated[
        str, typer.Option(help="Model size: minilm, base or tiny (with --init random).")
    ] = "minilm",
    lr: Annotated[float, typer.Option(help="Learning rate of the pretrained text stream.")] = 5e-5,
    lr_new: Annotated[
        float, typer.Option(help="Learning rate of new parameters (layout, visual, heads).")
    ] = 5e-4,
    mvlm_weight: Annotated[float, typer.Option(help="Weight of masked visual-language modelling.")] = 1.0,
    tia_weight: Annotated[float, typer.Option(help="Weight of text-image alignment.")] = 1.0,
    tim_weight: Annotated[float, typer.Option(help="Weight of text-image matching.")] = 1.0,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Steps between resume checkpoints.")] = 50,
    seed: int = 42,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last if present.")] = False,
) -> None:
    """Pre-train the encoder on unlabelled pages (MVLM, TIA, TIM); OCR is cached in OUT/ocr. For several
    processes, OCR with --steps 0, then: torchrun --nproc_per_node N -m model.pretrain.loop --pages
    OUT/pages.jsonl --out OUT."""
    from model.nn.network import use_threads
    from model.pretrain.data import read_pages
    from model.pretrain.loop import PretrainOptions, run_pretraining
    from service.cli.progress import TrainingProgress
    from service.settings import get_settings
    from service.threads import torch_threads

    settings = get_settings()
    pages_file = _pretraining_corpus(images, out, settings)
    if steps == 0:
        return
    config = start_for(init, size).config
    options = PretrainOptions(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        lr_new=lr_new,
        seed=seed,
        budget_seconds=budget_minutes * 60 if budget_minutes else None,
        checkpoint_every=checkpoint_every,
        init=init,
        mvlm_weight=mvlm_weight,
        tia_weight=tia_weight,
        tim_weight=tim_weight,
    )
    use_threads(torch_threads(settings.train_threads))
    with TrainingProgress() as bar:
        records = run_pretraining(read_pages(pages_file), out, out, options, config, resume, bar.progress)
    last = records[-1] if records else {}
    losses = ", ".join(f"{k} {last[k]:.4f}" for k in ("mvlm", "tia", "tim") if k in last)
    typer.echo(f"pre-trained encoder in {out / 'model'} (last losses: {losses})")


@app.command()
def export(
    out: Annotated[
        Path, typer.Option(help="Serving folder to write (model.onnx, model.int8.onnx, onnx.json).")
    ],
    model: Annotated[
        Path | None, typer.Option(help="Trained model folder; default: the bundled model.")
    ] = None,
    int8: Annotated[bool, typer.Option(help="Also write the int8 (dynamically quantised) variant.")] = True,
) -> None:
    """Export a trained model to a self-contained ONNX serving folder (needs the train extra)."""
    from model.bundled import bundled_model_dir
    from model.train.export import export_onnx

    for path in export_onnx(model or bundled_model_dir(), out, int8=int8):
        typer.echo(f"wrote {path}")


app.command()(average)
app.command("validate-data")(validate_data)
app.command()(synth)
app.command()(recombine)


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="FUNSD-format folder to score on.")],
    model: Annotated[
        Path | None, typer.Option(help="Model folder (config.json, model.safetensors); default: bundled.")
    ] = None,
    word_order: Annotated[str | None, typer.Option(help="Override the model's word order.")] = None,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Link probability threshold.")] = 0.5,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON.")] = None,
) -> None:
    """Entity-level precision, recall and F1 (seqeval-style exact spans), micro and per label; for models
    with a relation head, link F1 with gold entities (`links|gold`) and end to end (`links|e2e`)."""
    import json

    from model.bundled import bundled_model_dir
    from model.train.evaluate import evaluate_model_dir

    report = evaluate_model_dir(model or bundled_model_dir(), data, word_order, threshold)
    entities = report.entities
    rows = [*entities.per_label.items(), ("micro", entities.micro)]
    if report.relations_gold_entities and report.relations_end_to_end:
        rows += [("links|gold", report.relations_gold_entities), ("links|e2e", report.relations_end_to_end)]
    typer.echo(f"{'':<12} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    for label, scores in rows:
        typer.echo(
            f"{label:<12} {scores.precision:9.4f} {scores.recall:9.4f} {scores.f1:9.4f} {scores.support:8d}"
        )
    if json_out:
        json_out.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")


def _write_overlays(extraction: object, out_dir: Path, stem: str) -> list[Path]:
    from service.overlay import overlay_png
    from service.pipeline import Extraction

    assert isinstance(extraction, Extraction)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for page, image in zip(extraction.result.pages, extraction.images, strict=True):
        path = out_dir / f"{stem}-page-{page.page}.png"
        path.write_bytes(overlay_png(image, page))
        written.append(path)
    return written


def _load_runtime(settings: "Settings", model: Path | None, variant: str) -> object:
    """The runtime of `model` (default: the `default` model of the settings), exported once into the
    settings' data directory when only trained weights are there; its id is the one the server reports."""
    from model.runtime import Runtime
    from service.registry import DEFAULT_ID, ENTRY_FILE, TRAINED_ID, serving_model_dir

    source = model if model is not None else settings.default_model_dir
    _announce_export(settings, source)
    runtime = Runtime.load(
        serving_model_dir(settings, source),
        variant=variant,  # type: ignore[arg-type]
        relation_threshold=settings.relation_threshold,
    )
    if model is None:
        runtime.model_id = DEFAULT_ID  # type: ignore[attr-defined]
    elif TRAINED_ID.match(model.name) and (model / ENTRY_FILE).is_file():
        runtime.model_id = model.name  # type: ignore[attr-defined]  # a registered model's folder
    return runtime


def _announce_export(settings: "Settings", source: Path | None) -> None:
    """One line on stderr when the model must be exported first (it takes a while, and it is kept)."""
    from model.artifact import META_FILE, WEIGHTS_FILE
    from model.bundled import bundled_model_dir
    from model.onnx_meta import ONNX_META_FILE
    from service.registry import model_fingerprint

    source = source if source is not None else bundled_model_dir()
    trained_only = not (source / ONNX_META_FILE).is_file() and (source / WEIGHTS_FILE).is_file()
    if not trained_only or not (source / META_FILE).is_file():
        return
    target = settings.data_dir / "models" / f"{source.resolve().name}-{model_fingerprint(source)}"
    if not (target / ONNX_META_FILE).is_file():
        typer.echo(f"exporting the model to {target} (once)", err=True)


@app.command()
def extract(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="PDF, PNG, JPEG, TIFF, BMP, WebP or JSON pages."),
    ],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result to this file instead of printing it.")
    ] = None,
    overlay: Annotated[
        Path | None, typer.Option(help="Folder for one overlay PNG per page (FILE-page-N.png).")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="ONNX serving folder or trained model folder; default: bundled.")
    ] = None,
    variant: Annotated[str, typer.Option(help="Model graph: int8 (faster) or fp32.")] = "int8",
    pages: Annotated[str | None, typer.Option(help="Pages to read, 1-based, e.g. 1-3,5.")] = None,
    ocr_language: Annotated[str | None, typer.Option(help="Tesseract language(s), e.g. eng+deu.")] = None,
    dpi: Annotated[int | None, typer.Option(help="Resolution PDF pages are rasterised at.")] = None,
) -> None:
    """Extract words, entities and key-value pairs from one document, without the server."""
    from pydantic import ValidationError

    from service.errors import DocumentError
    from service.pipeline import run_pipeline
    from service.schemas import ExtractOptions
    from service.settings import command_line_data_dir, get_settings

    if variant not in ("int8", "fp32"):
        raise typer.BadParameter("variant must be int8 or fp32", param_hint="--variant")
    settings = get_settings()
    settings = settings.model_copy(update={"data_dir": command_line_data_dir(settings)})
    try:
        options = ExtractOptions(pages=pages, ocr_language=ocr_language, dpi=dpi)
        runtime = _load_runtime(settings, model, variant)
        extraction = run_pipeline(file.read_bytes(), options, settings, runtime)
    except (DocumentError, ValidationError, FileNotFoundError, RuntimeError, ValueError) as exc:
        typer.echo(f"error: {getattr(exc, 'detail', exc)}", err=True)
        raise typer.Exit(code=1) from exc
    text = extraction.result.model_dump_json(indent=2)
    if json_out is None:
        typer.echo(text)
    else:
        json_out.write_text(text + "\n", encoding="utf-8")
    if overlay is not None:
        for path in _write_overlays(extraction, overlay, file.stem):
            typer.echo(f"wrote {path}", err=True)
