"""One synthetic page from (seed, index): template, fonts, values, scan degradation, FUNSD annotation.

The page depends only on (seed, index, schema), so a corpus is the same whatever the number of workers.
"""

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from model.synth.blocks import page_marks
from model.synth.canvas import Box, Canvas, Entity
from model.synth.commerce import ALL_TEMPLATES
from model.synth.degrade import Degradation, decorate, degrade, rotate_point
from model.synth.fonts import choose_fonts, discover_fonts
from model.synth.schema import Schema, get_schema
from model.synth.templates import fill
from model.synth.values import Values

RENDER_SCALE = 2.0  # drawn this many times larger than the output, then downscaled


@dataclass
class SynthPage:
    """A generated page: its image and FUNSD annotation (`form`, plus `meta`: template, fonts, ...)."""

    name: str
    image: Image.Image
    annotation: dict[str, Any]


def page_seed(seed: int, index: int) -> int:
    """A 63-bit seed for page `index` of a corpus seeded with `seed`."""
    digest = hashlib.blake2b(f"docextract-synth:{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def page_name(index: int) -> str:
    return f"synth_{index:07d}"


def _new_canvas(rng: random.Random, seed: int) -> tuple[Canvas, tuple[int, int]]:
    width = rng.randint(754, 850)
    size = (width, round(width * rng.uniform(1.27, 1.33)))
    scale = RENDER_SCALE
    canvas_size = (round(size[0] * scale), round(size[1] * scale))
    margins = tuple(
        round(scale * rng.uniform(lo, hi)) for lo, hi in ((35, 110), (30, 90), (35, 110), (30, 80))
    )
    canvas = Canvas(
        image=Image.new("L", canvas_size, 255),
        rng=rng,
        fonts=choose_fonts(rng, scale),
        values=Values(seed, rng),
        scale=scale,
        margins=margins,  # type: ignore[arg-type]
        spacing=rng.uniform(1.2, 1.7),
        ink=rng.randint(0, 50),
    )
    return canvas, size


def _box_mapper(canvas: Canvas, size: tuple[int, int], angle: float) -> Callable[[Box], list[int]]:
    sx, sy = size[0] / canvas.image.width, size[1] / canvas.image.height
    centre = (size[0] / 2, size[1] / 2)

    def mapped(box: Box) -> list[int]:
        corners = [(box[0] * sx, box[1] * sy), (box[2] * sx, box[1] * sy)]
        corners += [(box[0] * sx, box[3] * sy), (box[2] * sx, box[3] * sy)]
        if angle:
            corners = [rotate_point(x, y, angle, centre) for x, y in corners]
        xs, ys = [p[0] for p in corners], [p[1] for p in corners]
        x0, y0 = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
        x1, y1 = min(size[0], math.ceil(max(xs))), min(size[1], math.ceil(max(ys)))
        return [x0, y0, max(x0, x1), max(y0, y1)]

    return mapped


def _form(
    entities: list[Entity], links: list[tuple[int, int]], schema: Schema, mapped: Callable[[Box], list[int]]
) -> list[dict[str, Any]]:
    labels = {e.id: schema.label(e) for e in entities}
    kept = [(h, t) for h, t in links if schema.keeps_link(labels[h], labels[t])]
    form = []
    for entity in entities:
        words = [{"text": text, "box": mapped(box)} for text, box in entity.words]
        boxes = [w["box"] for w in words]
        form.append(
            {
                "id": entity.id,
                "text": " ".join(w["text"] for w in words),
                "box": [
                    min(b[0] for b in boxes),
                    min(b[1] for b in boxes),
                    max(b[2] for b in boxes),
                    max(b[3] for b in boxes),
                ],
                "label": labels[entity.id],
                "words": words,
                "linking": [[h, t] for h, t in kept if entity.id in (h, t)],
            }
        )
    return form


def render_page(seed: int, index: int, schema_name: str = "funsd") -> SynthPage:
    """Render page `index` of the corpus `seed` in the given label schema. Same arguments, same page."""
    schema = get_schema(schema_name)
    discover_fonts()  # a clear error before anything else when there is no font
    ps = page_seed(seed, index)
    rng = random.Random(ps)
    canvas, size = _new_canvas(rng, ps)
    template_name = rng.choices(schema.templates, weights=schema.template_weights)[0]
    page_marks(canvas)
    variant = ALL_TEMPLATES[template_name](canvas)
    if canvas.entities and template_name not in ("letter", "receipt"):
        y = max(e.bottom for e in canvas.entities) + canvas.gap(10, 30)
        if rng.random() < (0.9 if y < canvas.image.height * 0.55 else 0.5):
            fill(canvas, y)
    decorate(canvas.image, rng, str(canvas.fonts.title.path), canvas.scale)
    scan = Degradation.sample(rng)
    image = degrade(canvas.image, size, scan, rng, np.random.default_rng(ps))
    form = _form(canvas.entities, canvas.links, schema, _box_mapper(canvas, size, scan.angle))
    meta = {
        "generator": "docextract synth",
        "seed": seed,
        "index": index,
        "schema": schema.name,
        "template": template_name,
        "variant": variant,
        "fonts": list(canvas.fonts.files),
        "angle": round(scan.angle, 3),
    }
    return SynthPage(page_name(index), image, {"form": form, "meta": meta})
