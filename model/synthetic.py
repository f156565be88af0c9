"""Synthetic form pages with exact ground truth, rendered with PIL. No torch.

`render_form(seed)` draws a form-like page (a header, key-value pairs side by side or value below key,
multi-word values, a table, free text) in DejaVu fonts and returns the image plus its annotation in
FUNSD JSON format: entities with words, pixel boxes, labels and links (question -> answer, header ->
question). The same seed always gives the same page. Writers put pages into a FUNSD-format folder, a
multi-page PDF or a multi-frame TIFF. Tests and training smoke tests use these as fixtures.
"""

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from model.boxes import BoxPx, union_box

FONT_DIRS: tuple[Path, ...] = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
REGULAR_FONTS: tuple[str, ...] = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
BOLD_FONTS: tuple[str, ...] = ("DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSansMono-Bold.ttf")

FIRST_NAMES = ("John", "Mary", "Robert", "Linda", "James", "Susan", "David", "Karen", "Peter", "Anne")
LAST_NAMES = ("Smith", "Johnson", "Brown", "Miller", "Davis", "Wilson", "Moore", "Taylor", "Clark", "Hall")
COMPANY_WORDS = ("Acme", "Globex", "Initech", "Umbrella", "Northwind", "Contoso", "Vandelay", "Stark")
COMPANY_SUFFIXES = ("Inc.", "Corp.", "Ltd.", "Company", "Group", "Industries")
STREETS = ("Main St.", "Oak Avenue", "Park Road", "Elm Street", "Lake Drive", "Hill Lane")
CITIES = ("Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton", "Salem")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September")
SENTENCE_WORDS = (
    "please", "review", "the", "attached", "report", "and", "return", "signed", "copy", "by", "next",
    "week", "results", "of", "study", "are", "summarized", "below", "for", "your", "records",
)  # fmt: skip
TITLES = (
    "APPLICATION FORM", "FAX COVER SHEET", "INVOICE", "MEMORANDUM", "PURCHASE ORDER",
    "RESEARCH PROPOSAL", "CUSTOMER SURVEY", "SHIPPING NOTICE",
)  # fmt: skip


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _company(rng: random.Random) -> str:
    return f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_SUFFIXES)}"


def _date(rng: random.Random) -> str:
    day, year = rng.randint(1, 28), rng.randint(1985, 2025)
    if rng.random() < 0.5:
        return f"{rng.choice(MONTHS)} {day}, {year}"
    return f"{rng.randint(1, 12):02d}/{day:02d}/{year}"


def _phone(rng: random.Random) -> str:
    return f"({rng.randint(200, 989)}) {rng.randint(200, 989)}-{rng.randint(1000, 9999)}"


def _address(rng: random.Random) -> str:
    return f"{rng.randint(1, 9999)} {rng.choice(STREETS)} {rng.choice(CITIES)}"


def _amount(rng: random.Random) -> str:
    return f"${rng.randint(1, 99999):,}.{rng.randint(0, 99):02d}"


def _code(rng: random.Random) -> str:
    return f"{rng.choice('ABCDEFGH')}{rng.randint(100, 99999)}"


def _sentence(rng: random.Random, low: int = 3, high: int = 8) -> str:
    return " ".join(rng.choice(SENTENCE_WORDS) for _ in range(rng.randint(low, high))).capitalize()


FIELDS: tuple[tuple[str, Callable[[random.Random], str]], ...] = (
    ("Name", _name), ("To", _name), ("From", _name), ("Attention", _name), ("Company", _company),
    ("Date", _date), ("Phone", _phone), ("Fax", _phone), ("Address", _address), ("Total", _amount),
    ("Amount Due", _amount), ("Invoice No.", _code), ("Account", _code), ("Reference", _code),
    ("City", lambda rng: rng.choice(CITIES)), ("Subject", _sentence),
)  # fmt: skip
TABLE_COLUMNS: tuple[tuple[str, Callable[[random.Random], str]], ...] = (
    ("Item", _code), ("Quantity", lambda rng: str(rng.randint(1, 500))), ("Price", _amount),
    ("Date", _date), ("Contact", _name),
)  # fmt: skip


def find_font(name: str) -> Path:
    """Path of a DejaVu font file; FileNotFoundError names the Debian package to install."""
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"font {name} not found in {[str(d) for d in FONT_DIRS]}: install fonts-dejavu-core"
    )


@dataclass
class SyntheticPage:
    """A rendered page and its FUNSD-format annotation (`{"form": [...]}`)."""

    name: str
    image: Image.Image
    annotation: dict[str, Any]


@dataclass
class _Canvas:
    """Draws words on a page and records FUNSD entities and links as it goes."""

    rng: random.Random
    image: Image.Image
    margin: int
    entities: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.draw = ImageDraw.Draw(self.image)

    @property
    def right(self) -> int:
        return self.image.width - self.margin

    @property
    def bottom(self) -> int:
        return self.image.height - self.margin

    def fits(self, y: float, lines: int, font: ImageFont.FreeTypeFont) -> bool:
        return y + lines * self.line_height(font) <= self.bottom

    @staticmethod
    def line_height(font: ImageFont.FreeTypeFont) -> int:
        return round(font.size * 1.5)

    def add(self, label: str, text: str, x: float, y: float, font: ImageFont.FreeTypeFont) -> dict[str, Any]:
        """Draw `text` from (x, y), wrapping at the right margin back to x; record it as one entity."""
        words: list[dict[str, Any]] = []
        cursor_x, cursor_y, space = x, y, font.getlength(" ")
        for token in text.split():
            width = font.getlength(token)
            if words and cursor_x + width > self.right:
                cursor_x, cursor_y = x, cursor_y + self.line_height(font)
            self.draw.text((cursor_x, cursor_y), token, fill=0, font=font)
            box = [int(v) for v in self.draw.textbbox((cursor_x, cursor_y), token, font=font)]
            words.append({"text": token, "box": box})
            cursor_x += width + space
        entity_box = union_box(w["box"] for w in words) if words else (x, y, x, y)
        entity = {
            "id": len(self.entities),
            "text": " ".join(w["text"] for w in words),
            "label": label,
            "box": [int(v) for v in entity_box],
            "words": words,
            "linking": [],
        }
        self.entities.append(entity)
        return entity

    @staticmethod
    def link(head: dict[str, Any], tail: dict[str, Any]) -> None:
        pair = [head["id"], tail["id"]]
        head["linking"].append(pair)
        tail["linking"].append(pair)


def _bottom_of(entities: Sequence[dict[str, Any]]) -> int:
    return max(e["box"][3] for e in entities)


def _key_text(rng: random.Random, key: str) -> str:
    return key + (":" if rng.random() < 0.7 else "")


def _pair_side_by_side(canvas: _Canvas, y: float, fonts: "_Fonts", header: dict[str, Any] | None) -> float:
    rng = canvas.rng
    key_name, value_fn = rng.choice(FIELDS)
    question = canvas.add("question", _key_text(rng, key_name), canvas.margin, y, fonts.key)
    value_x = max(question["box"][2] + rng.randint(10, 40), canvas.margin + rng.choice((0, 160, 200)))
    answer = canvas.add("answer", value_fn(rng), value_x, y, fonts.value)
    canvas.link(question, answer)
    if header is not None:
        canvas.link(header, question)
    return _bottom_of([question, answer])


def _pair_value_below(canvas: _Canvas, y: float, fonts: "_Fonts", header: dict[str, Any] | None) -> float:
    rng = canvas.rng
    key_name, value_fn = rng.choice(FIELDS)
    question = canvas.add("question", _key_text(rng, key_name), canvas.margin, y, fonts.key)
    value_y = question["box"][3] + rng.randint(4, 12)
    answer = canvas.add("answer", value_fn(rng), canvas.margin + rng.choice((0, 20)), value_y, fonts.value)
    canvas.link(question, answer)
    if header is not None:
        canvas.link(header, question)
    return _bottom_of([question, answer])


def _table(canvas: _Canvas, y: float, fonts: "_Fonts", header: dict[str, Any] | None) -> float:
    rng = canvas.rng
    columns = rng.sample(TABLE_COLUMNS, k=rng.randint(2, 4))
    column_width = (canvas.right - canvas.margin) // len(columns)
    keys = [
        canvas.add("question", name, canvas.margin + i * column_width, y, fonts.key)
        for i, (name, _) in enumerate(columns)
    ]
    row_y = _bottom_of(keys) + 8
    canvas.draw.line((canvas.margin, row_y - 4, canvas.right, row_y - 4), fill=0, width=1)
    for _ in range(rng.randint(1, 3)):
        if not canvas.fits(row_y, 1, fonts.value):
            break
        for i, (key, (_, value_fn)) in enumerate(zip(keys, columns, strict=True)):
            text = value_fn(rng)
            while fonts.value.getlength(text) > column_width - 10 and " " in text:
                text = text.rsplit(" ", 1)[0]
            canvas.link(key, canvas.add("answer", text, canvas.margin + i * column_width, row_y, fonts.value))
        row_y += canvas.line_height(fonts.value)
    return row_y


def _free_text(canvas: _Canvas, y: float, fonts: "_Fonts", header: dict[str, Any] | None) -> float:
    entity = canvas.add("other", _sentence(canvas.rng, 6, 16), canvas.margin, y, fonts.value)
    return entity["box"][3]


@dataclass(frozen=True)
class _Fonts:
    title: ImageFont.FreeTypeFont
    key: ImageFont.FreeTypeFont
    value: ImageFont.FreeTypeFont

    @classmethod
    def choose(cls, rng: random.Random) -> "_Fonts":
        family = rng.randrange(len(REGULAR_FONTS))
        size = rng.randint(13, 17)
        bold = find_font(BOLD_FONTS[family])
        regular = find_font(REGULAR_FONTS[family])
        key_font = bold if rng.random() < 0.5 else regular
        return cls(
            title=ImageFont.truetype(str(bold), size + rng.randint(4, 9)),
            key=ImageFont.truetype(str(key_font), size),
            value=ImageFont.truetype(str(regular), size),
        )


BLOCKS = (_pair_side_by_side, _pair_value_below, _table, _free_text)
BLOCK_WEIGHTS = (5, 3, 1, 1)


def render_form(seed: int, width: int = 850, height: int = 1100, name: str | None = None) -> SyntheticPage:
    """Render one form page. Same arguments, same page (pixels and annotation)."""
    rng = random.Random(seed)
    canvas = _Canvas(rng, Image.new("L", (width, height), 255), margin=rng.randint(40, 80))
    fonts = _Fonts.choose(rng)
    title = rng.choice(TITLES)
    title_x = (width - fonts.title.getlength(title)) / 2 if rng.random() < 0.6 else canvas.margin
    header = canvas.add("header", title, title_x, canvas.margin, fonts.title)
    y = header["box"][3] + rng.randint(20, 40)
    while canvas.fits(y, 3, fonts.value):
        block = rng.choices(BLOCKS, weights=BLOCK_WEIGHTS)[0]
        section_header = header if block in (_pair_side_by_side, _pair_value_below) else None
        y = block(canvas, y, fonts, section_header) + rng.randint(12, 30)
    return SyntheticPage(name or f"synthetic_{seed:06d}", canvas.image, {"form": canvas.entities})


def write_funsd_dataset(pages: Sequence[SyntheticPage], out_dir: Path) -> Path:
    """Write pages as a FUNSD-format folder (`images/NAME.png`, `annotations/NAME.json`)."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "annotations").mkdir(parents=True, exist_ok=True)
    for page in pages:
        page.image.save(out_dir / "images" / f"{page.name}.png")
        (out_dir / "annotations" / f"{page.name}.json").write_text(
            json.dumps(page.annotation), encoding="utf-8"
        )
    return out_dir


def write_pdf(images: Sequence[Image.Image], path: Path, dpi: float = 100.0) -> Path:
    """Write page images as one image-only PDF, one page per image."""
    first, *rest = [image.convert("RGB") for image in images]
    first.save(path, format="PDF", save_all=True, append_images=rest, resolution=dpi)
    return Path(path)


def write_tiff(images: Sequence[Image.Image], path: Path) -> Path:
    """Write page images as one multi-frame TIFF."""
    # Copies: Pillow 13 keeps a PNG save's encoder settings on the image and passes them to libtiff.
    first, *rest = [image.copy() for image in images]
    first.save(path, format="TIFF", save_all=True, append_images=list(rest), compression="tiff_adobe_deflate")
    return Path(path)


def page_boxes(page: SyntheticPage) -> list[BoxPx]:
    """All word boxes of a page, in annotation order (handy for tests comparing OCR output)."""
    return [tuple(w["box"]) for e in page.annotation["form"] for w in e["words"]]  # type: ignore[misc]
