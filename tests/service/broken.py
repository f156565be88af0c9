"""Broken variants of every container format the service reads, generated for the bad-input corpus.

For each container, the ways its structure can point at itself or blow up: PDF page trees that loop (poppler
gives such a page 0 x 0 points), TIFF IFD chains and cycles past the page limit and IFDs outside the file or
with more tags than any scan (classic and BigTIFF), PNG files of many chunks or whose text chunks and ICC
profile decompress past Pillow's limit (before and after the image data), JPEG files of many markers or fill
bytes, and dataset zips with a corrupt member for every compression method or a member name flagged UTF-8
that is not. `DOCUMENTS` and `DATASETS` map a name to the bytes, the status and the problem kind each must
get.
"""

import io
import json
import struct
import zipfile
import zlib

from PIL import Image

from tests.service.fake_pdf import TextRun, content_stream

PAGE_LIMIT = 100  # the default `max_pages`
BOMB = zlib.compress(b"\x00" * (2 << 20), 9)  # 2 MiB of text: past Pillow's 1 MiB per chunk


def image(fmt: str, size: tuple[int, int] = (100, 100)) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, 255).save(buffer, fmt)
    return buffer.getvalue()


# PDF.


def pdf_of(bodies: list[bytes]) -> bytes:
    """A PDF of the objects `bodies` (object 1 is the catalog) with an exact xref table."""
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(bodies, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(bodies) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(bodies) + 1, xref)
    return bytes(out)


def page_tree_loops() -> dict[str, bytes]:
    """Page trees that point at themselves: a node that is its own kid, two nodes that are each other's, and
    a loop beside a page with text (poppler repeats the text on the 0 x 0 page the loop gives)."""
    catalog = b"<< /Type /Catalog /Pages 2 0 R >>"
    text = content_stream([TextRun(72, 700, 14, "Name: Jane Doe"), TextRun(72, 670, 14, "Date: 2024-01-02")])
    stream = b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream"
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R"
    page += b" /Resources << /Font << /F1 4 0 R >> >> >>"
    return {
        "its own kid": pdf_of([catalog, b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]),
        "each other's kids": pdf_of(
            [
                catalog,
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
            ]
        ),
        "a loop beside a page with text": pdf_of(
            [catalog, b"<< /Type /Pages /Kids [5 0 R 2 0 R] /Count 2 >>", stream, font, page]
        ),
    }


# TIFF.

TIFF_TAGS = ((256, 1), (257, 1), (258, 8), (259, 1), (262, 1), (273, 0), (278, 1), (279, 1))  # 1x1 grey


def tiff(
    frames: int,
    *,
    big: bool = False,
    motorola: bool = False,
    cycle: bool = False,
    last_next: int = 0,
    extra_tags: int = 0,
) -> bytes:
    """A TIFF of `frames` 1x1 grey frames (one shared pixel), each IFD pointing at the next: BigTIFF
    (`big`), big-endian (`motorola`). The last IFD points back at the first (`cycle`) or at `last_next`;
    `extra_tags` private tags pad each IFD."""
    order = ">" if motorola else "<"
    version = struct.pack(order + "H", 43 if big else 42)
    header = (b"MM" if motorola else b"II") + version
    header += struct.pack(order + "HHQ", 8, 0, 24) if big else struct.pack(order + "I", 16)
    entry, count_format, pointer = (order + f for f in (("HHQQ", "Q", "Q") if big else ("HHII", "H", "I")))
    short_shift = (48 if big else 16) if motorola else 0  # a SHORT is at the start of the value field
    pixel = len(header)
    first = pixel + 8
    tags = [
        (tag, 4 if tag == 273 else 3, 1, pixel if tag == 273 else value << short_shift)
        for tag, value in TIFF_TAGS
    ]
    tags += [(50000 + n % 10000, 3, 1, 0) for n in range(extra_tags)]
    body = struct.pack(count_format, len(tags)) + b"".join(struct.pack(entry, *t) for t in tags)
    size = len(body) + struct.calcsize(pointer)
    out = bytearray(header + b"\x00" * 8)
    for n in range(frames):
        following = first + (n + 1) * size if n < frames - 1 else (first if cycle else last_next)
        out += body + struct.pack(pointer, following)
    return bytes(out)


def tiff_variants() -> dict[str, tuple[bytes, int, str]]:
    over = PAGE_LIMIT * 20
    return {
        "tiff ifd chain past the page limit": (tiff(over), 413, "too-many-pages"),
        "tiff ifd cycle past the page limit": (tiff(PAGE_LIMIT + 50, cycle=True), 413, "too-many-pages"),
        "bigtiff ifd chain past the page limit": (tiff(over, big=True), 413, "too-many-pages"),
        "tiff next ifd outside the file": (tiff(2, last_next=0x7FFFFFF0), 422, "corrupt-file"),
        "bigtiff next ifd outside the file": (tiff(2, big=True, last_next=1 << 60), 422, "corrupt-file"),
        "tiff ifds of 65535 tags each": (tiff(2, extra_tags=65535 - len(TIFF_TAGS)), 422, "corrupt-file"),
    }


# PNG and JPEG.


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with(chunk: bytes, after_image_data: bool = False) -> bytes:
    """A 100x100 PNG with `chunk` after its header (or just before IEND)."""
    png = image("PNG")
    at = len(png) - 12 if after_image_data else 33  # IEND is the last 12 bytes; IHDR ends at 33
    return png[:at] + chunk + png[at:]


OVERSIZED_CHUNKS = {
    "zTXt": png_chunk(b"zTXt", b"Comment\x00\x00" + BOMB),
    "iTXt": png_chunk(b"iTXt", b"Comment\x00\x01\x00\x00\x00" + BOMB),
    "iCCP": png_chunk(b"iCCP", b"profile\x00\x00" + BOMB),
}


def png_and_jpeg_variants() -> dict[str, tuple[bytes, int, str]]:
    jpeg = image("JPEG")
    found: dict[str, tuple[bytes, int, str]] = {
        f"png {kind} over pillow's limit": (png_with(chunk), 422, "corrupt-file")
        for kind, chunk in OVERSIZED_CHUNKS.items()
    }
    found["png zTXt over pillow's limit after the image data"] = (
        png_with(OVERSIZED_CHUNKS["zTXt"], after_image_data=True),
        422,
        "corrupt-file",
    )
    found["png of 200000 chunks"] = (png_with(png_chunk(b"prVt", b"") * 200_000), 422, "corrupt-file")
    found["jpeg of 200000 markers"] = (
        jpeg[:2] + b"\xff\xfe\x00\x02" * 200_000 + jpeg[2:],
        422,
        "corrupt-file",
    )
    found["jpeg of 1 MB of fill bytes"] = (jpeg[:2] + b"\xff" * (1 << 20) + jpeg[2:], 422, "corrupt-file")
    return found


DOCUMENTS: dict[str, tuple[bytes, int, str]] = {
    **{f"pdf page tree: {name}": (data, 422, "corrupt-file") for name, data in page_tree_loops().items()},
    **tiff_variants(),
    **png_and_jpeg_variants(),
}


# Dataset zips.


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def corrupt_member(method: int) -> bytes:
    """A zip whose one member's compressed data is broken: the stream's first bytes (deflate: an invalid
    block type; bzip2: a bad stream header; LZMA: invalid properties) replaced with 0xff."""
    data = bytearray(zip_of({"annotations/a.json": b'{"form": []}' * 100}, method))
    name_length, extra_length = struct.unpack_from("<HH", data, 26)
    start = 30 + name_length + extra_length
    keep = {zipfile.ZIP_DEFLATED: 0, zipfile.ZIP_BZIP2: 4, zipfile.ZIP_LZMA: 4}[method]
    data[start + keep : start + keep + 5] = b"\xff" * 5
    return bytes(data)


def undecodable_name() -> bytes:
    """A zip whose member name is flagged UTF-8 (general purpose bit 11) but is not valid UTF-8."""
    data = bytearray(
        zip_of({"annotations/a.json": b"{}"}).replace(b"annotations/a.json", b"annotations/\xff.json")
    )
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        flags = struct.unpack_from("<H", data, at + flags_at)[0]
        struct.pack_into("<H", data, at + flags_at, flags | 0x800)
    return bytes(data)


def dataset_with_image(png: bytes) -> bytes:
    """A one-document FUNSD dataset zip whose image is `png`."""
    box = [1, 1, 5, 5]
    entity = {"id": 0, "label": "question", "text": "x", "box": box, "words": [{"text": "x", "box": box}]}
    annotation = json.dumps({"form": [{**entity, "linking": []}]}).encode()
    return zip_of({"annotations/a.json": annotation, "images/a.png": png})


DATASETS: dict[str, tuple[bytes, int, str]] = {
    "zip member name flagged utf-8 that is not": (undecodable_name(), 422, "invalid-dataset"),
    **{
        f"zip corrupt {name} member": (corrupt_member(method), 422, "invalid-dataset")
        for name, method in (
            ("deflate", zipfile.ZIP_DEFLATED),
            ("bzip2", zipfile.ZIP_BZIP2),
            ("lzma", zipfile.ZIP_LZMA),
        )
    },
    **{
        f"dataset image whose {kind} is over pillow's limit": (
            dataset_with_image(png_with(chunk)),
            422,
            "invalid-dataset",
        )
        for kind, chunk in OVERSIZED_CHUNKS.items()
    },
}
