import random

import numpy as np
from PIL import Image

from model.synth.degrade import Degradation, degrade, rotate_point


def test_rotate_point_follows_pil_rotation():
    image = Image.new("L", (400, 600), 255)
    image.putpixel((50, 80), 0)
    rotated = image.rotate(0.5, resample=Image.Resampling.NEAREST, fillcolor=255)
    ys, xs = np.nonzero(np.asarray(rotated) < 128)
    x, y = rotate_point(50.5, 80.5, 0.5, (200, 300))
    assert abs(xs[0] + 0.5 - x) <= 1 and abs(ys[0] + 0.5 - y) <= 1


def test_degrade_gives_a_grey_page_of_the_output_size():
    page = Image.new("L", (1600, 2000), 255)
    page.paste(0, (200, 200, 1400, 260))
    for seed in range(6):
        rng = random.Random(seed)
        out = degrade(page, (800, 1000), Degradation.sample(rng), rng, np.random.default_rng(seed))
        assert out.mode == "L" and out.size == (800, 1000)
        pixels = np.asarray(out)
        assert pixels[115:125, 150:650].mean() < 128 < pixels[400:500].mean()
