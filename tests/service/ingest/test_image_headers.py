"""The bounded structure walks: TIFF frames counted as Pillow counts them but only as far as asked, and
PNG, JPEG and TIFF files with more structure than any scan refused, each in a time that does not grow with
how the bytes are cut up."""

import io
import time

import pytest
from PIL import Image

from service.errors import CorruptFileError
from service.ingest.image_headers import MAX_ELEMENTS, check_header, check_jpeg, check_png, tiff_frame_count
from tests.fixtures.broken import image, png_chunk, png_with, tiff


def pillow_frames(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as opened:
        return int(opened.n_frames)


@pytest.mark.parametrize(
    "data",
    [tiff(1), tiff(7), tiff(7, cycle=True), tiff(5, big=True), tiff(3, big=True, cycle=True)],
    ids=["one frame", "chain", "chain back to the first", "bigtiff chain", "bigtiff cycle"],
)
def test_tiff_frames_are_counted_as_pillow_counts_them(data: bytes):
    assert tiff_frame_count(data, 100) == pillow_frames(data)


def test_tiff_frames_of_pillow_and_of_big_endian_files():
    frames = [Image.new("L", (20, 10), shade) for shade in (0, 128, 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:])
    assert tiff_frame_count(buffer.getvalue(), 100) == 3
    assert tiff_frame_count(tiff(4, motorola=True), 100) == pillow_frames(tiff(4, motorola=True)) == 4
    assert tiff_frame_count(tiff(4, motorola=True, big=True), 100) == 4  # Pillow does not open these


def test_tiff_frames_are_counted_only_to_one_past_the_limit():
    chain = tiff(100_000)
    started = time.monotonic()
    assert tiff_frame_count(chain, 100) == 101
    assert tiff_frame_count(tiff(150, cycle=True), 100) == 101
    assert tiff_frame_count(tiff(50, cycle=True), 100) == 50
    assert time.monotonic() - started < 1.0


def test_tiff_directories_outside_the_file_or_with_too_many_tags_are_corrupt():
    for data in (tiff(2, last_next=10**9), tiff(2, big=True, last_next=1 << 60), b"II*\x00\xff\xff\xff\x7f"):
        with pytest.raises(CorruptFileError, match=r"outside the file|runs past"):
            tiff_frame_count(data, 100)
    with pytest.raises(CorruptFileError, match="no image directory"):
        tiff_frame_count(b"II*\x00\x00\x00\x00\x00", 100)
    with pytest.raises(CorruptFileError, match="TIFF tags"):
        tiff_frame_count(tiff(2, extra_tags=65_000), 100)
    assert tiff_frame_count(tiff(1, extra_tags=65_000), 100) == 1  # one such IFD is fine


def test_png_and_jpeg_with_more_elements_than_the_limit_are_corrupt():
    jpeg = image("JPEG")
    over = MAX_ELEMENTS + 1
    refused = {
        "png chunks": png_with(png_chunk(b"prVt", b"") * over),
        "jpeg markers": jpeg[:2] + b"\xff\xfe\x00\x02" * over + jpeg[2:],
        "jpeg fill bytes": jpeg[:2] + b"\xff" * (over + 1) + jpeg[2:],
        "jpeg junk": jpeg[:2] + b"\x00" * over + jpeg[2:],
    }
    for name, data in refused.items():
        started = time.monotonic()
        with pytest.raises(CorruptFileError, match="more than"):
            check_header(data, "png" if name.startswith("png") else "jpeg")
        assert time.monotonic() - started < 1.0, name


def test_ordinary_and_truncated_images_pass_the_walks():
    png, jpeg = image("PNG"), image("JPEG")
    check_png(png)
    check_png(png_with(png_chunk(b"prVt", b"") * 1000))
    check_jpeg(jpeg)
    check_jpeg(jpeg[:2] + b"\xff\xfe\x00\x02" * 1000 + jpeg[2:])
    for data, fmt in ((png[:20], "png"), (jpeg[:5], "jpeg"), (png[:8], "png"), (b"\x89PNG", "bmp")):
        check_header(data, fmt)  # what is not there is left to Pillow to report
