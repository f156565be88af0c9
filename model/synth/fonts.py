"""Font discovery for synthetic forms: Debian font packages found by path, with graceful fallback.

Families come from fonts-dejavu-core, fonts-liberation, fonts-freefont-ttf, fonts-urw-base35 and
fonts-courier-prime (the typewriter look of old scans). Whatever subset is installed is used; when none of
the known families exists, any *.ttf / *.otf under the font roots is used on its own; when there is no font
at all, `FontsNotFoundError` says which packages to install.
"""

import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

FONT_ROOTS: tuple[Path, ...] = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
DEBIAN_PACKAGES = "fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-urw-base35 fonts-courier-prime"

# (family, style, regular file, bold file); files are looked up by name anywhere under FONT_ROOTS.
KNOWN_FAMILIES: tuple[tuple[str, str, str, str], ...] = (
    ("DejaVu Sans", "sans", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("DejaVu Serif", "serif", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
    ("DejaVu Sans Mono", "mono", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"),
    ("DejaVu Sans Condensed", "sans", "DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf"),
    ("Liberation Sans", "sans", "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf"),
    ("Liberation Serif", "serif", "LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf"),
    ("Liberation Mono", "mono", "LiberationMono-Regular.ttf", "LiberationMono-Bold.ttf"),
    ("Liberation Sans Narrow", "sans", "LiberationSansNarrow-Regular.ttf", "LiberationSansNarrow-Bold.ttf"),
    ("FreeSans", "sans", "FreeSans.ttf", "FreeSansBold.ttf"),
    ("FreeSerif", "serif", "FreeSerif.ttf", "FreeSerifBold.ttf"),
    ("FreeMono", "mono", "FreeMono.ttf", "FreeMonoBold.ttf"),
    ("Nimbus Sans", "sans", "NimbusSans-Regular.otf", "NimbusSans-Bold.otf"),
    ("Nimbus Roman", "serif", "NimbusRoman-Regular.otf", "NimbusRoman-Bold.otf"),
    ("Nimbus Mono PS", "mono", "NimbusMonoPS-Regular.otf", "NimbusMonoPS-Bold.otf"),
    ("Nimbus Sans Narrow", "sans", "NimbusSansNarrow-Regular.otf", "NimbusSansNarrow-Bold.otf"),
    ("C059", "serif", "C059-Roman.otf", "C059-Bold.otf"),
    ("P052", "serif", "P052-Roman.otf", "P052-Bold.otf"),
    ("URW Bookman", "serif", "URWBookman-Light.otf", "URWBookman-Demi.otf"),
    ("URW Gothic", "sans", "URWGothic-Book.otf", "URWGothic-Demi.otf"),
    ("Courier Prime", "mono", "Courier Prime.otf", "Courier Prime Bold.otf"),
)
SCRIPT_FILES: tuple[str, ...] = (
    "Z003-MediumItalic.otf",
    "URWBookman-LightItalic.otf",
    "DejaVuSerif-Italic.ttf",
)
# Typewriter and serif faces dominate 1980s-90s business forms; sans faces still appear.
STYLE_WEIGHTS: dict[str, float] = {"mono": 3.0, "serif": 2.0, "sans": 1.5}


class FontsNotFoundError(RuntimeError):
    """No usable font file on this machine."""


@dataclass(frozen=True)
class FontFamily:
    name: str
    style: str
    regular: Path
    bold: Path


@dataclass(frozen=True)
class FontSet:
    """The faces of one page, at render scale: title, section headers, keys, values, running text."""

    title: ImageFont.FreeTypeFont
    section: ImageFont.FreeTypeFont
    key: ImageFont.FreeTypeFont
    value: ImageFont.FreeTypeFont
    small: ImageFont.FreeTypeFont
    script: ImageFont.FreeTypeFont  # signatures: a calligraphic face where installed, else the value face
    files: tuple[str, ...]


def _index_font_files(roots: tuple[Path, ...]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for root in roots:
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.suffix.lower() in (".ttf", ".otf") and path.is_file():
                    files.setdefault(path.name, path)
    return files


@lru_cache(maxsize=4)
def discover_fonts(roots: tuple[Path, ...] = FONT_ROOTS) -> tuple[FontFamily, ...]:
    """Installed families (known ones first; else every font file as its own family)."""
    files = _index_font_files(roots)
    families = [
        FontFamily(name, style, files[regular], files.get(bold, files[regular]))
        for name, style, regular, bold in KNOWN_FAMILIES
        if regular in files
    ]
    if not families:
        families = [FontFamily(path.stem, "sans", path, path) for _, path in sorted(files.items())]
    if not families:
        raise FontsNotFoundError(
            f"no .ttf/.otf font under {[str(r) for r in roots]}: "
            f"install the Debian packages {DEBIAN_PACKAGES}"
        )
    return tuple(families)


@lru_cache(maxsize=512)
def load_font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """A FreeType face, cached per process (opening fonts is the slow part of drawing)."""
    return ImageFont.truetype(str(path), size)


@lru_cache(maxsize=4)
def find_script_font(roots: tuple[Path, ...] = FONT_ROOTS) -> Path | None:
    """The first installed calligraphic or italic face, or None."""
    files = _index_font_files(roots)
    return next((files[name] for name in SCRIPT_FILES if name in files), None)


def pick_family(rng: random.Random, families: tuple[FontFamily, ...]) -> FontFamily:
    weights = [STYLE_WEIGHTS.get(f.style, 1.0) for f in families]
    return rng.choices(families, weights=weights)[0]


def choose_fonts(rng: random.Random, scale: float, families: tuple[FontFamily, ...] | None = None) -> FontSet:
    """Faces and sizes of one page: body size 9-14 px at ~100 dpi (times `scale`), keys bold or not."""
    installed = families is None  # the machine's fonts: the calligraphic face too
    families = families or discover_fonts()
    body = pick_family(rng, families)
    title_family = body if rng.random() < 0.5 else pick_family(rng, families)
    size = rng.randint(9, 14)
    key_path = body.bold if rng.random() < 0.4 else body.regular
    typewriter = [f for f in families if f.style == "mono"]
    if typewriter and rng.random() < 0.3:  # a printed form filled in on a typewriter
        value_family = rng.choice(typewriter)
    else:
        value_family = body if rng.random() < 0.75 else pick_family(rng, families)
    section_path = title_family.bold if rng.random() < 0.7 else title_family.regular

    def face(path: Path, px: int) -> ImageFont.FreeTypeFont:
        return load_font(path, max(6, round(px * scale)))

    script_path = (find_script_font() if installed else None) or value_family.regular
    used = (title_family.bold, section_path, key_path, value_family.regular, body.regular, script_path)
    return FontSet(
        title=face(title_family.bold, size + rng.randint(3, 9)),
        section=face(section_path, size + rng.randint(0, 3)),
        key=face(key_path, size),
        value=face(value_family.regular, size + rng.randint(-1, 1)),
        small=face(body.regular, max(8, size - rng.randint(1, 3))),
        script=face(script_path, size + rng.randint(1, 5)),
        files=tuple(sorted({p.name for p in used})),
    )
