"""Loss curves as PNG files, drawn with Pillow (no plotting library in the environment). No torch."""

import math
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image, ImageDraw

WIDTH, HEIGHT = 640, 360
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 20, 30, 40


def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average over at most `window` values."""
    out, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        out.append(total / min(index + 1, window))
    return out


def _scale(low: float, high: float, start: int, end: int) -> Callable[[float], float]:
    span = (high - low) or 1.0
    return lambda v: start + (v - low) / span * (end - start)


def plot_curve(steps: Sequence[int], values: Sequence[float], title: str, path: Path) -> Path:
    """One loss curve (raw in grey, moving average in blue) with its value range and step range."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    finite = [(s, v) for s, v in zip(steps, values, strict=True) if math.isfinite(v)]
    draw.text((MARGIN_LEFT, 8), title, fill="black")
    left, right, top, bottom = MARGIN_LEFT, WIDTH - MARGIN_RIGHT, MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    draw.rectangle((left, top, right, bottom), outline="black")
    if finite:
        xs, ys = [s for s, _ in finite], [v for _, v in finite]
        to_x = _scale(min(xs), max(xs), left, right)
        to_y = _scale(min(ys), max(ys), bottom, top)
        for series, colour in ((ys, (190, 190, 190)), (smooth(ys, max(1, len(ys) // 20)), (30, 90, 200))):
            points = [(to_x(x), to_y(y)) for x, y in zip(xs, series, strict=True)]
            draw.line(points if len(points) > 1 else points * 2, fill=colour, width=2)
        draw.text((4, top), f"{max(ys):.3f}", fill="black")
        draw.text((4, bottom - 10), f"{min(ys):.3f}", fill="black")
        draw.text((left, bottom + 8), f"step {min(xs)}", fill="black")
        draw.text((right - 80, bottom + 8), f"step {max(xs)}", fill="black")
    image.save(path)
    return Path(path)


def plot_losses(records: Sequence[dict[str, float]], names: Sequence[str], out_dir: Path) -> list[Path]:
    """`loss_NAME.png` in `out_dir` for each name, from records with a `step` and that name."""
    paths = []
    for name in names:
        rows = [r for r in records if name in r]
        steps, values = [int(r["step"]) for r in rows], [float(r[name]) for r in rows]
        paths.append(plot_curve(steps, values, f"{name} loss per step", Path(out_dir) / f"loss_{name}.png"))
    return paths
