import base64
import contextlib
import io
import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from service.errors import (
    CorruptFileError,
    DocumentError,
    EmptyFileError,
    EncryptedPdfError,
    InvalidPagesJsonError,
    PageSelectionError,
    TooManyPagesError,
    TooManyPixelsError,
    UnsupportedFormatError,
    UploadTooLargeError,
)
from service.ingest import image_headers, load
from service.ingest.images import MAX_TIFF_FRAMES
from service.ingest.load import (
    Page,
    check_document,
    detect_format,
    load_document,
    open_document,
    parse_page_selection,
    resolve_page_selection,
)
from service.settings import Settings
from tests.fixtures.broken import tiff as tiff_chain
from tests.fixtures.fake_pdf import FakePage, make_pdf, text_page
from tests.fixtures.forms import SyntheticPage, write_pdf, write_tiff

SETTINGS = Settings()


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def page(synthetic_pages: list[SyntheticPage]) -> Image.Image:
    return synthetic_pages[0].image


@pytest.fixture(scope="module")
def two_page_pdf(tmp_path_factory: pytest.TempPathFactory, synthetic_pages: list[SyntheticPage]) -> bytes:
    path = tmp_path_factory.mktemp("pdf") / "two.pdf"
    return write_pdf([p.image for p in synthetic_pages[:2]], path).read_bytes()


@pytest.fixture(scope="module")
def two_page_tiff(tmp_path_factory: pytest.TempPathFactory, synthetic_pages: list[SyntheticPage]) -> bytes:
    path = tmp_path_factory.mktemp("tiff") / "two.tif"
    return write_tiff([p.image for p in synthetic_pages[:2]], path).read_bytes()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` but holds a few bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


# --- formats --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"), [("PNG", "png"), ("JPEG", "jpeg"), ("BMP", "bmp"), ("WEBP", "webp")]
)
def test_single_images_load_as_one_page_by_content(page: Image.Image, fmt: str, expected: str):
    data = encode(page, fmt)
    assert detect_format(data) == expected
    (loaded,) = load_document(data, SETTINGS)
    assert (loaded.index, loaded.width, loaded.height) == (0, page.width, page.height)
    assert loaded.image is not None and loaded.image.mode in ("L", "RGB")
    assert loaded.words is None and loaded.needs_ocr and loaded.source == "image"


def test_an_image_or_json_that_quotes_a_pdf_header_is_not_taken_for_a_pdf(page: Image.Image):
    info = PngInfo()
    info.add_text("Comment", "scanned from %PDF-1.7")
    buffer = io.BytesIO()
    page.save(buffer, "PNG", pnginfo=info)
    assert detect_format(buffer.getvalue()) == "png"
    assert detect_format(b'{"pages": [{"width": 9, "height": 9, "words": [{"text": "%PDF-1.4"') == "json"
    assert detect_format(b"\x00junk before the header\n%PDF-1.4\n") == "pdf"  # as PDF readers accept


def test_rgba_and_palette_images_become_rgb_on_white():
    rgba = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    (loaded,) = load_document(encode(rgba, "PNG"), SETTINGS)
    assert loaded.image is not None and loaded.image.mode == "RGB"
    assert loaded.image.getpixel((5, 5)) == (255, 255, 255)
    (palette,) = load_document(encode(rgba.convert("P"), "PNG"), SETTINGS)
    assert palette.image is not None and palette.image.mode in ("L", "RGB")


def test_sixteen_bit_images_keep_their_contrast():
    image = Image.new("I;16", (20, 10), 65535)
    image.paste(0, (0, 0, 10, 10))
    (loaded,) = load_document(encode(image, "PNG"), SETTINGS)
    assert loaded.image is not None and loaded.image.mode == "L"
    assert loaded.image.getpixel((2, 2)) == 0 and loaded.image.getpixel((15, 2)) == 255


def test_multi_frame_tiff_is_multi_page_and_selectable(two_page_tiff: bytes, page: Image.Image):
    pages = load_document(two_page_tiff, SETTINGS)
    assert [p.index for p in pages] == [0, 1]
    assert pages[0].image is not None and pages[0].image.tobytes() == page.tobytes()
    assert [p.index for p in load_document(two_page_tiff, SETTINGS, "2")] == [1]


def test_exif_orientation_is_applied(page: Image.Image):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: the viewer must rotate 90 degrees clockwise
    data = encode(page.rotate(90, expand=True), "JPEG", exif=exif, quality=95)
    (loaded,) = load_document(data, SETTINGS)
    assert loaded.image is not None and loaded.image.size == page.size
    difference = np.abs(np.asarray(loaded.image, dtype=float) - np.asarray(page, dtype=float)).mean()
    assert difference < 5  # upright again, up to JPEG noise


def test_image_pdf_is_rasterised_at_the_configured_dpi(two_page_pdf: bytes):
    pages = load_document(two_page_pdf, SETTINGS)  # written at 100 dpi from 850x1100 pages: Letter
    assert [(p.index, p.width, p.height, p.dpi) for p in pages] == [
        (0, 1700, 2200, 200.0),
        (1, 1700, 2200, 200.0),
    ]
    assert all(p.needs_ocr and p.source == "image" for p in pages)
    (low,) = load_document(two_page_pdf, Settings(pdf_dpi=72), "2")
    assert (low.index, low.width, low.height) == (1, 612, 792)


def _ink_inside(image: Image.Image, box: tuple[float, ...]) -> bool:
    region = image.convert("L").crop(tuple(int(v) for v in box))
    return region.getextrema()[0] < 100


def test_text_layer_pdf_gives_words_with_boxes_and_lines_without_ocr():
    data = make_pdf([text_page(["TO: John Smith", "Date: May 5, 1999"])])
    (loaded,) = load_document(data, SETTINGS)
    assert loaded.source == "pdf-text" and not loaded.needs_ocr and loaded.image is not None
    assert loaded.words is not None
    assert [w.text for w in loaded.words] == ["TO:", "John", "Smith", "Date:", "May", "5,", "1999"]
    assert [w.line_id for w in loaded.words] == [0, 0, 0, 1, 1, 1, 1]
    first = loaded.words[0].box_px
    assert first[0] == pytest.approx(72 * 200 / 72, abs=2)  # x = 72 pt from the left edge, at 200 dpi
    assert first[3] == pytest.approx((792 - 700) * 200 / 72, abs=15)  # baseline 700 pt from the bottom
    assert all(_ink_inside(loaded.image, w.box_px) for w in loaded.words)


def test_rotated_text_layer_page_boxes_follow_the_rotated_image():
    (loaded,) = load_document(make_pdf([text_page(["Rotated words here"], rotate=90)]), SETTINGS)
    assert (loaded.width, loaded.height) == (2200, 1700) and loaded.words is not None
    assert all(_ink_inside(loaded.image, w.box_px) for w in loaded.words)  # type: ignore[arg-type]


def test_pages_without_text_fall_back_to_ocr():
    data = make_pdf([text_page(["Plenty of words on this page"]), FakePage(), text_page(["Two words"])])
    pages = load_document(data, SETTINGS)
    assert [p.source for p in pages] == ["pdf-text", "image", "image"]  # "Two words" is under the minimum
    assert [p.needs_ocr for p in pages] == [False, True, True]
    assert load_document(data, Settings(pdf_text_min_words=2), "3")[0].source == "pdf-text"


def test_json_pages_keep_words_in_order_with_optional_lines_and_image(page: Image.Image):
    small = page.resize((381, 500))
    document = {
        "pages": [
            {
                "width": 762,
                "height": 1000,
                "words": [{"text": "TO:", "box": [102, 345, 129, 359], "line": 7}],
            },
            {
                "width": 381,
                "height": 500,
                "image": base64.b64encode(encode(small, "PNG")).decode(),
                "words": [{"text": "b", "box": [5, 5, 9, 9]}, {"text": "a", "box": [1, 1, 2, 2], "line": 0}],
            },
        ]
    }
    first, second = load_document(json.dumps(document).encode(), SETTINGS)
    assert (first.source, first.image, first.width, first.height) == ("json", None, 762, 1000)
    assert first.words is not None and first.words[0].box_px == (102, 345, 129, 359)
    assert first.words[0].line_id == 7 and not first.needs_ocr
    assert second.image is not None and second.image.size == (381, 500)
    assert [(w.text, w.line_id) for w in second.words or []] == [("b", None), ("a", 0)]
    assert [p.index for p in load_document(json.dumps(document).encode(), SETTINGS, "2")] == [1]


# --- bad inputs -----------------------------------------------------------------------------------------

WORD = {"text": "x", "box": [1, 1, 5, 5]}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"pages": [{"width": 100, "height": 100, "words": [{"text": "x", "box": [90, 1, 120, 5]}]}]},
            "outside",
        ),
        (
            {"pages": [{"width": 100, "height": 100, "words": [{"text": "x", "box": [9, 1, 5, 5]}]}]},
            "ordered",
        ),
        ({"pages": [{"width": 100, "height": 100, "words": [{"text": " ", "box": [1, 1, 5, 5]}]}]}, "empty"),
        ({"pages": [{"width": 0, "height": 100, "words": [WORD]}]}, "width"),
        ({"pages": [{"width": 100, "height": 100, "words": [WORD], "image": "%%%"}]}, "base64"),
        ({"pages": [{"width": 100, "height": 100, "words": [WORD], "image": "R0lGODlh"}]}, "PNG or JPEG"),
        ({"pages": []}, "pages"),
        ({"words": []}, "pages"),
        ([1, 2], "document"),
    ],
)
def test_invalid_json_pages_are_rejected_with_the_reason(document: object, message: str):
    with pytest.raises(InvalidPagesJsonError, match=message) as caught:
        load_document(json.dumps(document).encode(), SETTINGS)
    assert caught.value.status == 422


def test_json_image_must_match_the_page_size(page: Image.Image):
    image = base64.b64encode(encode(page.resize((50, 60)), "JPEG")).decode()
    document = {"pages": [{"width": 100, "height": 100, "words": [WORD], "image": image}]}
    with pytest.raises(InvalidPagesJsonError, match="50x60"):
        load_document(json.dumps(document).encode(), SETTINGS)


def test_malformed_json_is_invalid_pages_json():
    with pytest.raises(InvalidPagesJsonError, match="invalid JSON"):
        load_document(b'{"pages": [', SETTINGS)


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"GIF89a\x01\x00\x01\x00", "GIF"),
        (b"PK\x03\x04rest of a docx", "ZIP"),
        (b"Dear sir, please find attached", "not a format"),
        (b"BMnot really a bitmap at all", "not a format"),
    ],
)
def test_unsupported_or_mislabelled_content_is_415(data: bytes, what: str):
    with pytest.raises(UnsupportedFormatError, match=what) as caught:
        load_document(data, SETTINGS)
    assert caught.value.status == 415


@pytest.mark.parametrize("data", [b"", b"   \n\t "])
def test_empty_uploads_are_rejected(data: bytes):
    with pytest.raises(EmptyFileError):
        load_document(data, SETTINGS)


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP", "TIFF"])
def test_corrupt_and_truncated_images_are_422(page: Image.Image, fmt: str):
    data = encode(page, fmt)
    for broken in (_truncated(data), data[:16] + b"\x00" * 64):
        with pytest.raises(CorruptFileError) as caught:
            load_document(broken, SETTINGS)
        assert caught.value.status == 422


def test_corrupt_and_truncated_pdfs_are_422(two_page_pdf: bytes):
    for broken in (two_page_pdf[:400], b"%PDF-1.4\n" + b"garbage " * 50):
        with pytest.raises(CorruptFileError):
            load_document(broken, SETTINGS)


def test_encrypted_pdf_is_422():
    with pytest.raises(EncryptedPdfError, match="password") as caught:
        load_document(make_pdf([text_page(["secret words here"])], encrypted=True), SETTINGS)
    assert caught.value.status == 422


def test_upload_size_limit():
    with pytest.raises(UploadTooLargeError) as caught:
        load_document(b"x" * 101, Settings(max_upload_bytes=100))
    assert caught.value.status == 413


def test_page_count_limit_applies_after_selection(two_page_pdf: bytes, two_page_tiff: bytes):
    limited = Settings(max_pages=1)
    for data in (two_page_pdf, two_page_tiff, make_pdf([FakePage(), FakePage()])):
        with pytest.raises(TooManyPagesError) as caught:
            load_document(data, limited)
        assert caught.value.status == 413
        assert len(load_document(data, limited, "2")) == 1


def test_decompression_bomb_header_is_rejected_without_decoding():
    with pytest.raises(TooManyPixelsError, match=r"pixels|too large") as caught:
        load_document(png_header(30000, 30000), SETTINGS)
    assert caught.value.status == 413


def test_pixel_limit_applies_to_images_and_pdf_pages(page: Image.Image, two_page_pdf: bytes):
    with pytest.raises(TooManyPixelsError):
        load_document(encode(page, "PNG"), Settings(max_page_pixels=page.width * page.height - 1))
    with pytest.raises(TooManyPixelsError, match="600 dpi"):
        load_document(two_page_pdf, Settings(pdf_dpi=600, max_page_pixels=20_000_000))


BMP_MAGIC = b"BM" + b"\x00" * 12 + b"(\x00\x00\x00"
MAGICS = [
    b"%PDF-1.4\n",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF\x00\x00\x00\x00WEBP",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(magic=st.sampled_from([*MAGICS, b"{", BMP_MAGIC]), tail=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_domain_errors(magic: bytes, tail: bytes):
    with contextlib.suppress(DocumentError):
        load_document(magic + tail, SETTINGS)


# --- check_document (uploads) ---------------------------------------------------------------------------


def _tiff_with_a_bad_second_frame() -> bytes:
    frames = [Image.new("L", (200, 100), shade) for shade in (255, 0)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:], compression="tiff_deflate")
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as image:
        image.seek(1)
        start, size = image.tag_v2[273][0], image.tag_v2[279][0]  # the strip of frame 2
    return data[:start] + b"\xff" * size + data[start + size :]


def test_check_document_gives_the_format_of_readable_documents(page: Image.Image, two_page_pdf: bytes):
    for data, fmt in ((encode(page, "PNG"), "png"), (encode(page, "JPEG"), "jpeg"), (two_page_pdf, "pdf")):
        assert check_document(data, SETTINGS) == fmt
    assert check_document(json.dumps({"pages": [{"width": 9, "height": 9, "words": []}]}).encode(), SETTINGS)
    assert check_document(_tiff_with_a_bad_second_frame(), SETTINGS, "1") == "tiff"


def test_check_document_decodes_every_frame(page: Image.Image):
    """`Image.verify()` would pass truncated JPEG and TIFF data: the frames are decoded in full."""
    jpeg, tiff, pdf = encode(page, "JPEG"), encode(page, "TIFF"), b"%PDF-1.4\n" + b"x" * 90
    for broken in (jpeg[: len(jpeg) * 9 // 10], tiff[: len(tiff) // 2], b"II*\x00", pdf):
        with pytest.raises(CorruptFileError):
            check_document(broken, SETTINGS)
    with pytest.raises(CorruptFileError, match="page 2"):
        check_document(_tiff_with_a_bad_second_frame(), SETTINGS)


def test_check_document_limits_pages_after_selection_but_not_pages_beyond_the_end(two_page_pdf: bytes):
    limited = Settings(max_pages=1)
    with pytest.raises(TooManyPagesError):
        check_document(two_page_pdf, limited)
    assert check_document(two_page_pdf, limited, "2-99999999999999999999") == "pdf"
    assert check_document(two_page_pdf, limited, "7") == "pdf"  # processing reports page 7
    with pytest.raises(TooManyPixelsError, match="600 dpi"):
        check_document(two_page_pdf, Settings(pdf_dpi=600, max_page_pixels=20_000_000))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(magic=st.sampled_from([*MAGICS, b"{", BMP_MAGIC]), tail=st.binary(max_size=300))
def test_check_document_refuses_what_load_document_refuses(magic: bytes, tail: bytes):
    """The same error for the same bytes; only a PDF poppler cannot rasterise may pass the check."""
    data = magic + tail
    try:
        fmt = check_document(data, SETTINGS)
    except DocumentError as refused:
        with pytest.raises(DocumentError) as caught:
            load_document(data, SETTINGS)
        assert (caught.value.kind, caught.value.status) == (refused.kind, refused.status)
    else:
        with contextlib.suppress(DocumentError) if fmt == "pdf" else contextlib.nullcontext():
            load_document(data, SETTINGS)


# --- page selection -------------------------------------------------------------------------------------


def test_page_selection_parses_ranges_and_single_pages():
    assert parse_page_selection("1-3,5") == [(1, 3), (5, 5)]
    assert parse_page_selection(" 2 - 4 , 7 ") == [(2, 4), (7, 7)]
    assert resolve_page_selection("3,1-2,2", 5) == [0, 1, 2]
    assert resolve_page_selection(None, 3) == [0, 1, 2] == resolve_page_selection("  ", 3)


@pytest.mark.parametrize("spec", ["0", "3-1", "a", "1,,2", "1-", "-2", "1;2", "1.5"])
def test_bad_page_selections_are_rejected(spec: str):
    with pytest.raises(PageSelectionError):
        parse_page_selection(spec)


def test_page_selection_beyond_the_document_is_rejected(two_page_pdf: bytes):
    with pytest.raises(PageSelectionError, match="page 3"):
        load_document(two_page_pdf, SETTINGS, "1,3")


@given(ranges=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 5)), min_size=1, max_size=6))
def test_resolved_selection_is_sorted_unique_and_in_range(ranges: list[tuple[int, int]]):
    spec = ",".join(f"{a}-{a + n}" if n else str(a) for a, n in ranges)
    chosen = resolve_page_selection(spec, 45)
    assert chosen == sorted(set(chosen)) and all(0 <= i < 45 for i in chosen)
    assert set(chosen) == {p - 1 for a, n in ranges for p in range(a, a + n + 1)}


def format_and_indices(
    data: bytes, settings: Settings, selection: str | None = None
) -> tuple[str, list[int]]:
    source = open_document(data, settings, selection)
    return source.format, list(source.indices)


def test_open_document_names_the_pages_load_document_returns_with_its_errors(
    two_page_pdf: bytes, two_page_tiff: bytes
):
    for data, fmt in ((two_page_pdf, "pdf"), (two_page_tiff, "tiff")):
        for selection in (None, "2", "1-2", "2,1"):
            expected = [page.index for page in load_document(data, SETTINGS, selection)]
            assert format_and_indices(data, SETTINGS, selection) == (fmt, expected)
        for selection, error in (("3", PageSelectionError), ("x", PageSelectionError)):
            with pytest.raises(error):
                open_document(data, SETTINGS, selection)
        with pytest.raises(TooManyPagesError):
            open_document(data, Settings(max_pages=1))
    json_pages = json.dumps({"pages": [{"width": 9, "height": 9, "words": []}] * 3}).encode()
    assert format_and_indices(json_pages, SETTINGS, "2-3") == ("json", [1, 2])


def counting(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[object]:
    """A spy on `module.name`: the list grows by one entry per call."""
    calls: list[object] = []
    real = getattr(module, name)

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


def pixels_by_page(pages: list[Page]) -> list[tuple[int, bytes | None]]:
    return [(page.index, page.image.tobytes() if page.image else None) for page in pages]


def test_a_document_source_loads_its_pages_in_chunks_reading_the_document_once(
    monkeypatch: pytest.MonkeyPatch,
):
    """The format is detected and the TIFF's structure walked once, however many chunks are loaded; the
    chunks together are the pages `load_document` returns."""
    data = tiff_chain(7)
    expected = pixels_by_page(load_document(data, SETTINGS, "2-7"))
    detections = counting(monkeypatch, load, "detect_format")
    countings = counting(monkeypatch, image_headers, "tiff_frame_count")
    source = open_document(data, SETTINGS, "2-7")
    walks = len(countings)  # the structure check and the frame count, at opening
    assert (source.format, source.indices) == ("tiff", (1, 2, 3, 4, 5, 6))
    assert source.chunks(4) == [(1, 2, 3, 4), (5, 6)] and source.chunks(6) == [source.indices]
    loaded = [page for chunk in source.chunks(4) for page in source.load(chunk)]
    assert pixels_by_page(loaded) == expected
    assert [page.index for page in source.load()] == [1, 2, 3, 4, 5, 6]
    assert len(detections) == 1 and len(countings) == walks


def test_a_pdf_source_asks_poppler_for_its_pages_once(two_page_pdf: bytes, monkeypatch: pytest.MonkeyPatch):
    infos = counting(monkeypatch, load.pdf, "pdf_info")
    source = open_document(two_page_pdf, SETTINGS)
    assert [page.index for chunk in source.chunks(1) for page in source.load(chunk)] == [0, 1]
    assert len(infos) == 1


def test_tiff_frames_are_counted_only_as_far_as_the_selection_needs():
    """Past the page limit a TIFF is refused unless pages are selected; selected pages after it are read,
    up to MAX_TIFF_FRAMES; every entry point gives the same answer."""
    chain, limited = tiff_chain(300), Settings(max_pages=100)
    for read in (load_document, check_document, open_document):
        with pytest.raises(TooManyPagesError, match="more than 100 pages"):
            read(chain, limited)
        if read is not check_document:  # which reports pages beyond the end when they are processed
            with pytest.raises(PageSelectionError, match="has 300 page"):
                read(chain, limited, "2,301")
        with pytest.raises(TooManyPagesError, match="pages after 2000 cannot be read"):
            read(tiff_chain(MAX_TIFF_FRAMES + 10), limited, str(MAX_TIFF_FRAMES + 5))
    assert [page.index for page in load_document(chain, limited, "2,250")] == [1, 249]
    assert format_and_indices(chain, limited, "1-3,300") == ("tiff", [0, 1, 2, 299])
    assert check_document(tiff_chain(MAX_TIFF_FRAMES + 10), limited, "1") == "tiff"
