"""The tesseract command: `recognise` (words as TSV rows), `orientation` (OSD) and `installed_languages`.

The image goes to tesseract's standard input as an uncompressed PNM (no temporary file, no PNG encoding)
and its answer comes from its standard output. Every call has a time limit and an environment of its own
with one OpenMP thread (pages run in parallel, one tesseract each), so nothing is set in this process's
environment for children such as training runs to inherit.
"""

import functools
import io
import subprocess
from collections.abc import Sequence

from PIL import Image

from service.threads import child_environment

TESSERACT = "tesseract"
TSV_COLUMNS = ("block_num", "par_num", "line_num", "left", "top", "width", "height", "conf", "text")
PNM_MODES = ("1", "L", "RGB")
NOISE = ("Warning", "Estimating resolution", "Detected ")  # stderr lines that are not the error


class TesseractError(RuntimeError):
    """tesseract could not read the image (its own message), or is missing, or ran out of time."""


class TesseractNotFoundError(TesseractError):
    pass


class TesseractTimeoutError(TesseractError):
    pass


def tesseract_environment() -> dict[str, str]:
    return child_environment(1, {"OMP_THREAD_LIMIT": "1"})


def pnm_bytes(image: Image.Image) -> bytes:
    """The image as PBM, PGM or PPM (modes without a PNM form become grey or RGB)."""
    if image.mode not in PNM_MODES:
        image = image.convert("L" if image.mode in ("LA", "I", "I;16", "F") else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PPM")
    return buffer.getvalue()


def run_tesseract(args: Sequence[str], image: Image.Image | None, timeout_s: float) -> str:
    """tesseract's standard output for `args` (after the input and output names) on `image`."""
    command = [TESSERACT, "stdin", "stdout", *args] if image is not None else [TESSERACT, *args]
    stdin = pnm_bytes(image) if image is not None else b""
    try:
        done = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            timeout=timeout_s,
            env=tesseract_environment(),
            check=False,
        )
    except FileNotFoundError as exc:
        raise TesseractNotFoundError("tesseract is not installed (Debian package tesseract-ocr)") from exc
    except subprocess.TimeoutExpired as exc:
        raise TesseractTimeoutError(f"tesseract took longer than {timeout_s:g} s") from exc
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").splitlines()
        message = " ".join(line.strip() for line in lines if line.strip() and not line.startswith(NOISE))
        raise TesseractError(message[-500:] or f"tesseract exited with code {done.returncode}")
    return done.stdout.decode("utf-8", "replace")


def parse_tsv(text: str) -> dict[str, list[str]]:
    """tesseract's TSV -> columns by name (`text`, `conf`, `left`, ...), one entry per row."""
    lines = text.splitlines()
    if not lines:
        return {name: [] for name in TSV_COLUMNS}
    header = lines[0].split("\t")
    columns: dict[str, list[str]] = {name: [] for name in header}
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) < len(header):  # a word's text may be empty; a truncated row is skipped
            cells += [""] * (len(header) - len(cells))
        for name, cell in zip(header, cells, strict=False):
            columns[name].append(cell)
    return columns


def parse_osd(text: str) -> dict[str, float]:
    """tesseract's OSD answer -> {"rotate": degrees, "orientation_conf": confidence} (what it gave)."""
    found: dict[str, float] = {}
    keys = {"Rotate": "rotate", "Orientation confidence": "orientation_conf"}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in keys:
            try:
                found[keys[name.strip()]] = float(value.strip())
            except ValueError:
                continue
    return found


def recognise(
    image: Image.Image, language: str, psm: int, dpi: int, timeout_s: float
) -> dict[str, list[str]]:
    """Words and their boxes in `image`: tesseract's TSV rows as columns."""
    args = ["-l", language, "--psm", str(psm), "--dpi", str(dpi), "tsv"]
    return parse_tsv(run_tesseract(args, image, timeout_s))


def orientation(image: Image.Image, dpi: int, timeout_s: float) -> dict[str, float]:
    """tesseract's orientation and script detection (`--psm 0`) of `image`; TesseractError when the page
    has too little text."""
    return parse_osd(run_tesseract(["--psm", "0", "--dpi", str(dpi)], image, timeout_s))


@functools.cache
def installed_languages() -> frozenset[str]:
    """The languages the installed tesseract can read (`tesseract --list-langs`), asked once."""
    lines = run_tesseract(["--list-langs"], None, 30.0).splitlines()
    return frozenset(line.strip() for line in lines[1:] if line.strip())
