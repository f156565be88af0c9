"""Extraction results drawn over the page image: `render_overlay(image, page_result)`, `overlay_png(...)`.

Entity boxes are outlined and lightly filled in their label's colour (a fixed palette for the FUNSD labels,
a colour derived from the name for any other label, the same on every run), relations are arrows from the
key (head) to the value (tail), and a legend in the top-right corner names the labels on the page.
"""

import colorsys
import hashlib
import math
from collections.abc import Sequence
from io import BytesIO

from PIL import Image, ImageDraw, ImageFont

from service.schemas import ExtractedEntity, PageResult

RGB = tuple[int, int, int]
PALETTE: dict[str, RGB] = {
    "header": (148, 103, 189),
    "question": (31, 119, 180),
    "answer": (44, 160, 44),
    "other": (127, 127, 127),
}
ARROW_COLOUR: RGB = (214, 39, 40)
FILL_ALPHA = 48
LEGEND_BACKGROUND: RGB = (255, 255, 255)
TEXT_COLOUR: RGB = (0, 0, 0)


def label_colour(label: str) -> RGB:
    """The colour of a label: the palette's for FUNSD labels, else a hue hashed from the name."""
    if label in PALETTE:
        return PALETTE[label]
    digest = hashlib.sha256(label.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536
    saturation = 0.55 + digest[2] / 255 * 0.35
    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, 0.8)
    return (round(red * 255), round(green * 255), round(blue * 255))


def stroke_width(image: Image.Image) -> int:
    """Line width that stays visible on large scans: about 1/400 of the shorter side, at least 2."""
    return max(2, round(min(image.size) / 400))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, ImportError, TypeError):  # Pillow built without FreeType
        return ImageFont.load_default()


def legend_labels(entities: Sequence[ExtractedEntity]) -> list[str]:
    """Labels on the page: the FUNSD ones in palette order first, then the others alphabetically."""
    present = {e.label for e in entities}
    return [label for label in PALETTE if label in present] + sorted(present - PALETTE.keys())


def draw_entities(image: Image.Image, entities: Sequence[ExtractedEntity], width: int) -> Image.Image:
    """Translucent fill and solid outline for every entity box."""
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for entity in entities:
        colour = label_colour(entity.label)
        draw.rectangle(entity.box, fill=(*colour, FILL_ALPHA))
    composed = Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    draw = ImageDraw.Draw(composed)
    for entity in entities:
        x0, y0, x1, y1 = entity.box
        pad = width // 2 + 1
        draw.rectangle(
            (x0 - pad, y0 - pad, x1 + pad, y1 + pad), outline=label_colour(entity.label), width=width
        )
    return composed


def box_centre(box: Sequence[int]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def box_edge_point(box: Sequence[int], towards: tuple[float, float]) -> tuple[float, float]:
    """Where the segment from the box centre to `towards` leaves the box."""
    cx, cy = box_centre(box)
    dx, dy = towards[0] - cx, towards[1] - cy
    half_w, half_h = max((box[2] - box[0]) / 2, 0.5), max((box[3] - box[1]) / 2, 0.5)
    scale = min(half_w / abs(dx) if dx else math.inf, half_h / abs(dy) if dy else math.inf, 1.0)
    return (cx + dx * scale, cy + dy * scale)


def arrow_head(
    start: tuple[float, float], end: tuple[float, float], size: float
) -> list[tuple[float, float]]:
    """The triangle of an arrow head at `end`, pointing away from `start`."""
    angle = math.atan2(end[1] - start[1], end[0] - start[0])
    spread = math.radians(25)
    return [
        end,
        (end[0] - size * math.cos(angle - spread), end[1] - size * math.sin(angle - spread)),
        (end[0] - size * math.cos(angle + spread), end[1] - size * math.sin(angle + spread)),
    ]


def draw_arrow(
    draw: ImageDraw.ImageDraw, head_box: Sequence[int], tail_box: Sequence[int], width: int
) -> None:
    """An arrow from the edge of the key's box to the edge of the value's box."""
    start = box_edge_point(head_box, box_centre(tail_box))
    end = box_edge_point(tail_box, box_centre(head_box))
    if math.dist(start, end) < 1:  # overlapping boxes: centre to centre
        start, end = box_centre(head_box), box_centre(tail_box)
    draw.line([start, end], fill=ARROW_COLOUR, width=width)
    draw.polygon(arrow_head(start, end, size=4 * width + 6), fill=ARROW_COLOUR)


def draw_relations(image: Image.Image, page: PageResult, width: int) -> None:
    by_id = {entity.id: entity for entity in page.entities}
    draw = ImageDraw.Draw(image)
    for relation in page.relations:
        if relation.head in by_id and relation.tail in by_id:
            draw_arrow(draw, by_id[relation.head].box, by_id[relation.tail].box, width)


def draw_legend(image: Image.Image, labels: Sequence[str], with_arrow: bool) -> None:
    """A white box in the top-right corner: a swatch and the name of each label (and the arrow's meaning)."""
    if not labels and not with_arrow:
        return
    size = max(12, round(min(image.size) / 60))
    font, gap = _font(size), size // 2
    draw = ImageDraw.Draw(image)
    rows = [(label, label_colour(label)) for label in labels]
    if with_arrow:
        rows.append(("key -> value", ARROW_COLOUR))
    text_width = max(draw.textlength(text, font=font) for text, _ in rows)
    box_w, box_h = round(gap * 3 + size + text_width), gap + len(rows) * (size + gap)
    x0, y0 = max(0, image.width - box_w - gap), gap
    draw.rectangle((x0, y0, x0 + box_w, y0 + box_h), fill=LEGEND_BACKGROUND, outline=TEXT_COLOUR)
    for row, (text, colour) in enumerate(rows):
        top = y0 + gap + row * (size + gap)
        draw.rectangle((x0 + gap, top, x0 + gap + size, top + size), fill=colour)
        draw.text((x0 + 2 * gap + size, top), text, fill=TEXT_COLOUR, font=font)


def render_overlay(image: Image.Image | None, page: PageResult) -> Image.Image:
    """The page image (a white page when there is none) with entities, relations and a legend drawn on."""
    base = image if image is not None else Image.new("RGB", (page.width, page.height), (255, 255, 255))
    width = stroke_width(base)
    result = draw_entities(base, page.entities, width)
    draw_relations(result, page, width)
    draw_legend(result, legend_labels(page.entities), with_arrow=bool(page.relations))
    return result


def overlay_png(image: Image.Image | None, page: PageResult) -> bytes:
    """`render_overlay` encoded as PNG."""
    buffer = BytesIO()
    render_overlay(image, page).save(buffer, format="PNG")
    return buffer.getvalue()
