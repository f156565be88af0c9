"""Image uploads (PNG, JPEG, TIFF, BMP, WebP) -> pages: signatures, bounded opening, frame decoding.

Every image is opened lazily (header only) after a bounded walk of its structure
(`service.ingest.image_headers`), so too-big images are refused before any pixel is decoded. Frames are turned
upright by their EXIF orientation and normalised to mode L or RGB. Every bad input raises a
`service.errors.DocumentError` subclass and nothing else.
"""

from collections.abc import Sequence
from io import BytesIO
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from service.errors import CorruptFileError, TooManyPagesError, TooManyPixelsError
from service.ingest import image_headers
from service.ingest.page import Page, check_page_pixels
from service.ingest.selection import last_selected_page
from service.settings import Settings

ImageFormat = Literal["png", "jpeg", "tiff", "bmp", "webp"]
IMAGE_FORMATS: dict[str, str] = {"png": "PNG", "jpeg": "JPEG", "tiff": "TIFF", "bmp": "BMP", "webp": "WEBP"}

BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
# The most TIFF frames counted for a selection of pages past the page limit: Pillow's seek to frame n costs
# n^2 steps (2,000 frames: about 0.1 s).
MAX_TIFF_FRAMES = 2_000


def _is_bmp(data: bytes) -> bool:
    return data[:2] == b"BM" and len(data) >= 18 and int.from_bytes(data[14:18], "little") in BMP_HEADER_SIZES


def image_format(data: bytes) -> ImageFormat | None:
    """The image format whose signature starts `data`; None for none of them."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "bmp" if _is_bmp(data) else None


def _to_8bit(image: Image.Image) -> Image.Image:
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        values = values / 257.0
    return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L")


def normalise_mode(image: Image.Image) -> Image.Image:
    """Any PIL mode -> L or RGB; transparent pixels become white."""
    if image.mode in ("L", "RGB"):
        return image
    if image.mode.startswith("I") or image.mode == "F":
        return _to_8bit(image)
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("P", "PA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def open_image(data: bytes, fmt: str, settings: Settings) -> Image.Image:
    """Open lazily (header only): too-big images are refused before any pixel is decoded, and images with
    more structure than any scan has before Pillow walks it (`service.ingest.image_headers`)."""
    image_headers.check_header(data, fmt)
    return reopen_image(data, fmt, settings)


def reopen_image(data: bytes, fmt: str, settings: Settings) -> Image.Image:
    """`open_image` for bytes whose structure `open_image` has already walked: Pillow's lazy open only."""
    try:
        image = Image.open(BytesIO(data), formats=[IMAGE_FORMATS[fmt]])
    except Image.DecompressionBombError as exc:
        raise TooManyPixelsError(f"the image is too large to decode safely: {exc}") from exc
    except Exception as exc:  # PIL plugins raise many types on bad headers
        raise CorruptFileError(f"the {fmt.upper()} image cannot be read: {exc}") from exc
    check_page_pixels(image.width, image.height, settings, "the image")
    return image


def decode_frame(image: Image.Image, index: int, settings: Settings) -> Image.Image:
    """Frame `index` decoded, upright (EXIF orientation) and in mode L or RGB."""
    try:
        image.seek(index)
    except Exception as exc:
        raise CorruptFileError(f"page {index + 1} of the image cannot be read: {exc}") from exc
    check_page_pixels(image.width, image.height, settings, f"page {index + 1}")
    try:
        image.load()
        return normalise_mode(ImageOps.exif_transpose(image))
    except Exception as exc:  # truncated data, bad compression, broken EXIF ...
        raise CorruptFileError(f"page {index + 1} of the image cannot be decoded: {exc}") from exc


def frame_count(data: bytes, fmt: str, settings: Settings, selection: str | None) -> int:
    """The pages of an image: 1, or a TIFF's frames, counted only as far as the selection needs: to the page
    limit (a TIFF with more frames is refused unless pages are selected), or to the last selected page when
    that is later, but never past MAX_TIFF_FRAMES. A count over what was needed is a lower bound."""
    if fmt != "tiff":
        return 1
    last = last_selected_page(selection)
    needed = settings.max_pages if last is None else max(settings.max_pages, min(last, MAX_TIFF_FRAMES))
    count = image_headers.tiff_frame_count(data, needed)
    if count <= needed:
        return count
    if last is None:
        raise TooManyPagesError(
            f"the document has more than {needed} pages, the limit is {needed}; select fewer pages"
        )
    if last > needed:
        raise TooManyPagesError(f"the TIFF has more than {needed} pages: pages after {needed} cannot be read")
    return count


def decode_image(data: bytes, fmt: str, settings: Settings) -> Image.Image:
    """The first page of an image file, decoded under the settings' limits (used for JSON pages too)."""
    with open_image(data, fmt, settings) as image:
        return decode_frame(image, 0, settings)


class ImageReader:
    """A PNG, JPEG, TIFF, BMP or WebP: its structure walked and its pages counted once, frames decoded from a
    fresh lazy open (header only) per call."""

    def __init__(self, data: bytes, fmt: str, settings: Settings, selection: str | None) -> None:
        self.data, self.fmt, self.settings = data, fmt, settings
        with open_image(data, fmt, settings):
            self.page_count = frame_count(data, fmt, settings, selection)

    def load(self, indices: Sequence[int]) -> list[Page]:
        with reopen_image(self.data, self.fmt, self.settings) as image:
            frames = [(index, decode_frame(image, index, self.settings)) for index in indices]
        return [Page(index, frame, frame.width, frame.height, None, "image") for index, frame in frames]

    def check(self, indices: Sequence[int]) -> None:
        """Decode every frame in full, one at a time: `Image.verify()` passes truncated JPEG and TIFF data."""
        with reopen_image(self.data, self.fmt, self.settings) as image:
            for index in indices:
                decode_frame(image, index, self.settings)
