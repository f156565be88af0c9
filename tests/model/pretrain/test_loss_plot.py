from pathlib import Path

import pytest
from PIL import Image

from model.pretrain.loss_plot import plot_losses, smooth


def test_smooth_is_a_trailing_moving_average():
    assert smooth([4.0, 2.0, 6.0, 0.0], 2) == pytest.approx([4.0, 3.0, 4.0, 3.0])
    assert smooth([1.0, 3.0], 10) == pytest.approx([1.0, 2.0])


def test_one_png_per_objective_with_its_curve(tmp_path: Path):
    records = [{"step": s, "mvlm": 10.0 / s, "tim": 0.7} for s in range(1, 41)]
    records.append({"step": 41, "mvlm": float("nan"), "tim": 0.7})  # skipped, not drawn
    paths = plot_losses(records, ("mvlm", "tim", "tia"), tmp_path)
    assert [p.name for p in paths] == ["loss_mvlm.png", "loss_tim.png", "loss_tia.png"]
    with Image.open(paths[0]) as image:
        pixels = image.convert("RGB").load()
        width, height = image.size
    curve = [(x, y) for x in range(width) for y in range(height) if pixels[x, y] == (30, 90, 200)]
    assert curve and min(y for _, y in curve) < 60 and max(y for _, y in curve) > 300  # falls top to bottom
    assert max(x for x, _ in curve) > 600 and min(x for x, _ in curve) < 80
