"""Bounded walks over the structure of image files, before Pillow sees them.

Pillow walks a file's structure in Python: TIFF directories (IFDs) one frame at a time, with a cost that
grows with the square of the frame count when it counts them; PNG chunks and JPEG markers, padding and
junk one at a time (about half a second of a core per megabyte of tiny chunks). These walks look at the
same structure with a fixed cost per element, stop at `MAX_ELEMENTS` elements (far more than any scan
has: a few dozen chunks, markers or tags per page) and raise `CorruptFileError` past it, so the work one
upload can cause no longer depends on how its bytes are cut up. TIFF frames are counted only up to a given
number: a chain of IFDs that loops ends at the first IFD seen twice, as Pillow ends it.
"""

import re
import struct

from service.errors import CorruptFileError

MAX_ELEMENTS = 100_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG markers without a length: TEM, RST0-7, SOI, EOI.
JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})
JPEG_SOS = 0xDA
_FILL = re.compile(rb"\xff+")


def _too_much(what: str) -> CorruptFileError:
    return CorruptFileError(
        f"the image has more than {MAX_ELEMENTS} {what}: no scan has that many, so it is not read"
    )


def check_png(data: bytes) -> None:
    """CorruptFileError when a PNG has more than MAX_ELEMENTS chunks (its pixel data is not read)."""
    position, chunks = len(PNG_SIGNATURE), 0
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        chunks += 1
        if chunks > MAX_ELEMENTS:
            raise _too_much("PNG chunks")
        if kind == b"IEND":
            return
        position += 12 + length


def check_jpeg(data: bytes) -> None:
    """CorruptFileError when a JPEG has more than MAX_ELEMENTS markers, fill bytes and junk bytes before
    its first scan (what Pillow reads one at a time); the scans themselves are left to the decoder."""
    position, elements = 2, 0  # after SOI
    while position < len(data) and elements <= MAX_ELEMENTS:
        if data[position] != 0xFF:  # junk: Pillow skips it a byte at a time
            found = data.find(b"\xff", position)
            found = len(data) if found < 0 else found
            elements, position = elements + found - position, found
            continue
        fill = _FILL.match(data, position)
        assert fill is not None
        elements += fill.end() - position - 1
        position = fill.end()  # on the marker's code
        if position >= len(data) or data[position] == JPEG_SOS:
            return
        elements += 1
        if data[position] in JPEG_STANDALONE or data[position] == 0x00:
            position += 1
        elif position + 3 <= len(data):
            position += 1 + int.from_bytes(data[position + 1 : position + 3], "big")
        else:
            return
    if elements > MAX_ELEMENTS:
        raise _too_much("markers, fill or junk bytes before the image data")


class _TiffLayout:
    """Byte order and field sizes of a TIFF (classic or BigTIFF)."""

    def __init__(self, data: bytes) -> None:
        self.order = "<" if data[:2] == b"II" else ">"
        self.big = data[2:4] in (b"+\x00", b"\x00+")
        self.count_format = self.order + ("Q" if self.big else "H")
        self.offset_format = self.order + ("Q" if self.big else "I")
        self.count_size, self.entry_size = (8, 20) if self.big else (2, 12)
        self.offset_size = 8 if self.big else 4

    def first_ifd(self, data: bytes) -> int:
        at = 8 if self.big else 4
        if len(data) < at + self.offset_size:
            raise CorruptFileError("the TIFF image cannot be read: its header is truncated")
        return int(struct.unpack_from(self.offset_format, data, at)[0])

    def ifd(self, data: bytes, offset: int, frame: int) -> tuple[int, int]:
        """(entries, offset of the next IFD) of the IFD at `offset`."""
        if offset + self.count_size > len(data):
            raise CorruptFileError(f"page {frame} of the TIFF image cannot be read: it is outside the file")
        entries = int(struct.unpack_from(self.count_format, data, offset)[0])
        end = offset + self.count_size + entries * self.entry_size
        if end + self.offset_size > len(data):
            raise CorruptFileError(f"page {frame} of the TIFF image cannot be read: it runs past the file")
        return entries, int(struct.unpack_from(self.offset_format, data, end)[0])


def tiff_frame_count(data: bytes, limit: int) -> int:
    """The number of frames (pages) of a TIFF, counted up to `limit + 1`: a result over `limit` means "more
    than `limit`". CorruptFileError for an IFD outside the file or more than MAX_ELEMENTS IFD entries."""
    layout = _TiffLayout(data)
    offset, seen, elements = layout.first_ifd(data), set[int](), 0
    while offset and offset not in seen and len(seen) <= limit:
        seen.add(offset)
        entries, offset = layout.ifd(data, offset, len(seen))
        elements += entries + 1
        if elements > MAX_ELEMENTS:
            raise _too_much("TIFF tags")
    if not seen:
        raise CorruptFileError("the TIFF image cannot be read: it has no image directory")
    return len(seen)


def check_header(data: bytes, fmt: str) -> None:
    """Walk the structure Pillow reads when it opens an image of format `fmt` (the first IFD of a TIFF);
    CorruptFileError past MAX_ELEMENTS elements. Other formats are parsed in C: nothing to walk."""
    if fmt == "png":
        check_png(data)
    elif fmt == "jpeg":
        check_jpeg(data)
    elif fmt == "tiff":
        tiff_frame_count(data, 0)
