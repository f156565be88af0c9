"""Hand-written PDFs for tests: text pages in Helvetica, empty pages, rotated pages, an /Encrypt entry.

No PDF library needed: objects, a content stream per page and an exact xref table, as bytes.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

LETTER = (612, 792)


@dataclass
class TextRun:
    """`text` in Helvetica `size` pt with its baseline starting at (x, y) points from the bottom-left."""

    x: float
    y: float
    size: float
    text: str


@dataclass
class FakePage:
    runs: Sequence[TextRun] = field(default_factory=list)
    size: tuple[float, float] = LETTER
    rotate: int = 0


def content_stream(runs: Sequence[TextRun]) -> bytes:
    parts = [f"BT /F1 {r.size:g} Tf {r.x:g} {r.y:g} Td ({r.text}) Tj ET" for r in runs]
    return "\n".join(parts).encode("latin-1")


def _objects(pages: Sequence[FakePage]) -> list[bytes]:
    font_id = 3 + 2 * len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
    ]
    for i, page in enumerate(pages):
        width, height = page.size
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width:g} {height:g}] /Rotate {page.rotate} "
            f"/Contents {4 + 2 * i} 0 R /Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        content = content_stream(page.runs)
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    return objects


def make_pdf(pages: Sequence[FakePage], encrypted: bool = False) -> bytes:
    """A valid PDF of `pages`; `encrypted` adds a standard-security /Encrypt entry nobody can open."""
    objects = _objects(pages)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    encrypt = b""
    if encrypted:
        encrypt = (
            b"/Encrypt << /Filter /Standard /V 1 /R 2 /O <"
            + b"11" * 32
            + b"> /U <"
            + b"22" * 32
            + b"> /P -4 >> "
            b"/ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>] "
        )
    out += (
        b"trailer\n<< "
        + encrypt
        + b"/Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return bytes(out)


def text_page(lines: Sequence[str], size: float = 14, rotate: int = 0) -> FakePage:
    """A Letter page with one text line per entry, from the top-left margin down."""
    runs = [TextRun(72, 700 - i * 2 * size, size, line) for i, line in enumerate(lines)]
    return FakePage(runs, LETTER, rotate)
