"""A page canvas at render scale that draws words and records entities and links as it goes.

Coordinates here are render-scale pixels (the page is drawn `scale` times larger than the ~100 dpi output
and downscaled later); `model.synth.page` maps the boxes to the output image.
"""

import random
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from model.synth.fonts import FontSet
from model.synth.values import Values

Box = tuple[int, int, int, int]
ROLES: tuple[str, ...] = ("header", "question", "answer", "other")


@dataclass
class Entity:
    """Drawn words of one entity; `role` is its FUNSD label, `field` its schema tag (or None)."""

    id: int
    role: str
    field: str | None
    words: list[tuple[str, Box]]

    @property
    def box(self) -> Box:
        boxes = [b for _, b in self.words]
        return (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )

    @property
    def bottom(self) -> int:
        return self.box[3]

    @property
    def right(self) -> int:
        return self.box[2]


@dataclass
class Canvas:
    """Drawing state of one page."""

    image: Image.Image
    rng: random.Random
    fonts: FontSet
    values: Values
    scale: float
    margins: tuple[int, int, int, int]  # left, top, right, bottom, render pixels
    spacing: float = 1.45
    ink: int = 0
    entities: list[Entity] = field(default_factory=list)
    links: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.draw = ImageDraw.Draw(self.image)

    @property
    def left(self) -> int:
        return self.margins[0]

    @property
    def top(self) -> int:
        return self.margins[1]

    @property
    def right(self) -> int:
        return self.image.width - self.margins[2]

    @property
    def bottom(self) -> int:
        return self.image.height - self.margins[3]

    @property
    def width(self) -> int:
        return self.right - self.left

    def px(self, value: float) -> int:
        """Output-pixel distance -> render pixels."""
        return round(value * self.scale)

    def line_height(self, font: ImageFont.FreeTypeFont) -> int:
        return round(font.size * self.spacing)

    def fits(self, y: float, lines: int = 1, font: ImageFont.FreeTypeFont | None = None) -> bool:
        return y + lines * self.line_height(font or self.fonts.value) <= self.bottom

    def gap(self, low: float = 4, high: float = 14) -> int:
        return self.px(self.rng.uniform(low, high))

    def text_width(self, text: str, font: ImageFont.FreeTypeFont) -> float:
        return max((font.getlength(line) for line in text.split("\n")), default=0.0)

    def _lines(self, text: str, x: float, font: ImageFont.FreeTypeFont, max_x: float) -> list[list[str]]:
        space, lines = font.getlength(" "), []
        for paragraph in text.split("\n"):
            line: list[str] = []
            cursor = x
            for token in paragraph.split():
                width = font.getlength(token)
                if line and cursor + width > max_x:
                    lines.append(line)
                    line, cursor = [], x
                line.append(token)
                cursor += width + space
            if line:
                lines.append(line)
        return lines

    def text(
        self,
        role: str,
        text: str,
        x: float,
        y: float,
        font: ImageFont.FreeTypeFont,
        field: str | None = None,
        max_x: float | None = None,
        max_lines: int | None = None,
    ) -> Entity | None:
        """Draw `text` from (x, y), wrapping at `max_x` (default: right margin) and stopping at the bottom
        margin or after `max_lines`; record the drawn words as one entity (None when nothing fits)."""
        max_x = min(max_x or self.right, self.image.width - 2)
        words: list[tuple[str, Box]] = []
        space, height = font.getlength(" "), self.line_height(font)
        for number, line in enumerate(self._lines(text, x, font, max_x)):
            line_y = y + number * height
            if (max_lines is not None and number >= max_lines) or line_y + font.size > self.bottom:
                break
            cursor = x
            for token in line:
                self.draw.text((cursor, line_y), token, fill=self.ink, font=font)
                x0, y0, x1, y1 = self.draw.textbbox((cursor, line_y), token, font=font)
                if x1 > x0 and y1 > y0 and x1 < self.image.width:
                    words.append((token, (int(x0), int(y0), int(x1) + 1, int(y1) + 1)))
                cursor += font.getlength(token) + space
        if not words:
            return None
        entity = Entity(len(self.entities), role, field, words)
        self.entities.append(entity)
        return entity

    def link(self, head: Entity | None, tail: Entity | None) -> None:
        if head is not None and tail is not None and (head.id, tail.id) not in self.links:
            self.links.append((head.id, tail.id))

    def rule(self, x0: float, y0: float, x1: float, y1: float, width: float = 1.0) -> None:
        self.draw.line((x0, y0, x1, y1), fill=self.ink, width=max(1, self.px(width)))

    def rect(self, box: tuple[float, float, float, float], width: float = 1.0) -> None:
        self.draw.rectangle(box, outline=self.ink, width=max(1, self.px(width)))

    def checkbox(self, x: float, y: float, size: float, checked: bool) -> None:
        self.rect((x, y, x + size, y + size), 1.0)
        if checked:
            pad = size * 0.2
            self.rule(x + pad, y + pad, x + size - pad, y + size - pad, 1.5)
            self.rule(x + pad, y + size - pad, x + size - pad, y + pad, 1.5)
