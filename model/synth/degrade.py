"""Scan degradation like FUNSD's (numpy + PIL only): stamps and lines crossing text, faded or heavy ink,
downscaling to ~100 dpi, a small rotation, paper tone, blur, noise, speckle, thresholding, JPEG artefacts,
dark scanner borders.

`degrade` returns the output image and the rotation it applied, so that `model.synth.page` can move the
word boxes with it.
"""

import io
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

STAMP_WORDS = ("RECEIVED", "CONFIDENTIAL", "APPROVED", "COPY", "URGENT", "FILE", "PAID", "DRAFT", "VOID")


@dataclass(frozen=True)
class Degradation:
    """The random settings of one page's scan."""

    heavy: bool
    fade: float  # 1.0: full ink
    angle: float  # degrees, counter-clockwise
    blur: float
    noise: float
    speckle: float
    threshold: int | None
    jpeg: int | None
    paper: int
    whiten: int | None  # grey above this becomes white, as scanners clean the background
    border: bool

    @classmethod
    def sample(cls, rng: random.Random) -> "Degradation":
        fade = rng.uniform(0.55, 0.85) if rng.random() < 0.2 else 1.0
        whiten = rng.randint(215, 245) if rng.random() < 0.65 else None
        return cls(
            heavy=rng.random() < 0.2,
            fade=fade,
            angle=rng.uniform(-0.5, 0.5) if rng.random() < 0.4 else 0.0,
            blur=rng.uniform(0.2, 0.9) if rng.random() < 0.5 else 0.0,
            noise=rng.uniform(2, 12) if rng.random() < 0.5 else 0.0,
            speckle=rng.uniform(0.0002, 0.003) if rng.random() < 0.4 else 0.0,
            threshold=rng.randint(165, 215) if rng.random() < 0.3 else None,
            jpeg=rng.randint(25, 85) if rng.random() < 0.35 else None,
            paper=255 if rng.random() < 0.6 else rng.randint(222, 254),
            whiten=whiten if fade == 1.0 else None,  # faded ink is light grey: keep it
            border=rng.random() < 0.15,
        )


def decorate(image: Image.Image, rng: random.Random, font_path: str, scale: float) -> None:
    """Unlabelled marks at render scale: a rubber stamp, hand-drawn lines across the text, punch holes."""
    draw = ImageDraw.Draw(image)
    if rng.random() < 0.2:
        _stamp(draw, rng, font_path, scale, image.size)
    for _ in range(rng.choice((0, 0, 0, 1, 2))):
        w, h = image.size
        x, y, length, angle = (
            rng.uniform(0, w),
            rng.uniform(0, h),
            rng.uniform(0.05, 0.4) * h,
            rng.uniform(0, 6.3),
        )
        points = [(x, y), (x + length * math.cos(angle), y + length * math.sin(angle))]
        draw.line(points, fill=rng.randint(0, 90), width=max(1, round(scale * rng.uniform(0.8, 2.5))))
    if rng.random() < 0.1:
        x = round(scale * rng.uniform(8, 20))
        for fy in (0.2, 0.5, 0.8):
            y, r = round(image.height * fy), round(scale * 7)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=rng.randint(0, 60))


def _stamp(
    draw: ImageDraw.ImageDraw, rng: random.Random, font_path: str, scale: float, size: tuple[int, int]
) -> None:
    font = ImageFont.truetype(font_path, round(scale * rng.uniform(14, 24)))
    text = rng.choice(STAMP_WORDS)
    x, y = rng.uniform(0.1, 0.6) * size[0], rng.uniform(0.05, 0.85) * size[1]
    box = draw.textbbox((x, y), text, font=font)
    pad, grey = scale * 6, rng.randint(60, 150)
    shape = draw.rectangle if rng.random() < 0.6 else draw.ellipse
    shape(
        (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), outline=grey, width=max(1, round(scale * 2))
    )
    draw.text((x, y), text, fill=grey, font=font)


def _ink(image: Image.Image, d: Degradation) -> Image.Image:
    if d.heavy:
        image = image.filter(ImageFilter.MinFilter(3))
    if d.fade < 1.0:
        lut = [round(255 - (255 - v) * d.fade) for v in range(256)]
        image = image.point(lut)
    return image


def _pixels(image: Image.Image, d: Degradation, np_rng: np.random.Generator) -> Image.Image:
    if d.blur:
        image = image.filter(ImageFilter.GaussianBlur(d.blur))
    array = np.asarray(image, dtype=np.float32)
    array = array * (d.paper / 255.0)
    if d.noise:
        array += np_rng.normal(0.0, d.noise, array.shape).astype(np.float32)
    if d.threshold is not None:
        array = np.where(array < d.threshold, 0.0, float(d.paper))
    elif d.whiten is not None:
        array[array > d.whiten] = 255.0
    if d.speckle:
        mask = np_rng.random(array.shape, dtype=np.float32)
        array[mask < d.speckle] = 0.0
        array[mask > 1.0 - d.speckle / 3] = 255.0
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), mode="L")


def _border(image: Image.Image, rng: random.Random) -> None:
    draw = ImageDraw.Draw(image)
    w, h = image.size
    thickness = rng.randint(2, 8)
    side = rng.choice(("top", "right", "left"))
    box = {"top": (0, 0, w, thickness), "right": (w - thickness, 0, w, h), "left": (0, 0, thickness, h)}[side]
    draw.rectangle(box, fill=rng.randint(0, 40))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("L")


def degrade(
    image: Image.Image, size: tuple[int, int], d: Degradation, rng: random.Random, np_rng: np.random.Generator
) -> Image.Image:
    """Render-scale page -> degraded output page of `size`, rotated by `d.angle` about its centre."""
    image = _ink(image, d).resize(size, rng.choice((Image.Resampling.BOX, Image.Resampling.BILINEAR)))
    if d.angle:
        image = image.rotate(d.angle, resample=Image.Resampling.BILINEAR, fillcolor=255)
    image = _pixels(image, d, np_rng)
    if d.jpeg is not None:
        image = _jpeg(image, d.jpeg)
    if d.border:
        _border(image, rng)
    return image


def rotate_point(x: float, y: float, angle: float, centre: tuple[float, float]) -> tuple[float, float]:
    """Where PIL's `Image.rotate(angle)` (counter-clockwise, about `centre`) moves the point (x, y)."""
    theta = math.radians(angle)
    dx, dy = x - centre[0], y - centre[1]
    return (
        centre[0] + dx * math.cos(theta) + dy * math.sin(theta),
        centre[1] - dx * math.sin(theta) + dy * math.cos(theta),
    )
