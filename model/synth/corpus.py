"""Write a synthetic corpus as a FUNSD-format folder, in parallel, resumably.

Page `i` depends only on (seed, i, schema), so the folder is identical for any number of workers. Each page
is written to temporary files renamed into place, image first, so an annotation exists only for a complete
page; a rerun skips pages whose annotation exists. `synth.json` records the corpus settings, and a rerun
with other settings into the same folder is refused.
"""

import io
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from model.synth.page import SynthPage, page_name, render_page
from model.synth.schema import get_schema

MANIFEST = "synth.json"


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    written: int
    skipped: int
    elapsed_s: float

    @property
    def pages_per_s(self) -> float:
        return self.written / self.elapsed_s if self.elapsed_s > 0 else 0.0


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_page(page: SynthPage, out: Path) -> None:
    """Write images/NAME.png then annotations/NAME.json, each atomically."""
    buffer = io.BytesIO()
    page.image.save(buffer, format="PNG", compress_level=6)
    _replace(out / "images" / f"{page.name}.png", buffer.getvalue())
    _replace(out / "annotations" / f"{page.name}.json", json.dumps(page.annotation).encode("utf-8"))


def _generate(args: tuple[str, int, int, str]) -> bool:
    """Render and save one page unless its annotation exists; True when written."""
    out, seed, index, schema = args
    if (Path(out) / "annotations" / f"{page_name(index)}.json").is_file():
        return False
    save_page(render_page(seed, index, schema), Path(out))
    return True


def _check_manifest(out: Path, settings: dict[str, object]) -> None:
    path = out / MANIFEST
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        clash = {k: (previous.get(k), v) for k, v in settings.items() if k != "n" and previous.get(k) != v}
        if clash:
            raise ValueError(f"{out} holds a corpus made with other settings {clash}; use another --out")
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def _results(tasks: list[tuple[str, int, int, str]], workers: int) -> Iterator[bool]:
    if workers <= 1:
        yield from map(_generate, tasks)
        return
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    )
    with context.Pool(workers) as pool:
        yield from pool.imap_unordered(_generate, tasks, chunksize=4)


def write_corpus(
    out: Path,
    n: int,
    seed: int = 0,
    workers: int | None = None,
    schema: str = "funsd",
    on_progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Generate pages 0..n-1 into `out` (annotations/, images/), skipping pages already there."""
    get_schema(schema)  # unknown schema: fail before starting workers
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    _check_manifest(out, {"generator": "docextract synth", "seed": seed, "schema": schema, "n": n})
    workers = max(1, workers or os.cpu_count() or 1)
    tasks = [(str(out), seed, index, schema) for index in range(n)]
    start, written, last = time.monotonic(), 0, 0.0
    progress = Progress(0, n, 0, 0, 0.0)
    for done, was_written in enumerate(_results(tasks, workers), start=1):
        written += was_written
        progress = Progress(done, n, written, done - written, time.monotonic() - start)
        if on_progress and (progress.elapsed_s - last >= 2.0 or done == n):
            last = progress.elapsed_s
            on_progress(progress)
    return progress


def stderr_progress(progress: Progress) -> None:
    """One progress line on stderr: pages done, skipped, rate and time left."""
    rate = progress.pages_per_s
    left = (progress.total - progress.done) / rate if rate else 0.0
    print(
        f"synth: {progress.done}/{progress.total} pages ({progress.skipped} already there), "
        f"{rate:.1f} pages/s, {progress.elapsed_s:.0f} s elapsed, ~{left:.0f} s left",
        file=sys.stderr,
        flush=True,
    )
