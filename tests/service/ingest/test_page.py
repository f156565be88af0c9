import pytest
from PIL import Image

from service.errors import TooManyPagesError, TooManyPixelsError
from service.ingest.page import Page, Word, check_page_count, check_page_pixels
from service.settings import Settings


def test_a_page_needs_ocr_only_with_an_image_and_no_words_or_error():
    image = Image.new("L", (10, 10), 255)
    assert Page(0, image, 10, 10).needs_ocr
    assert not Page(0, image, 10, 10, words=[Word("a", (0, 0, 1, 1))]).needs_ocr
    assert not Page(0, image, 10, 10, words=[]).needs_ocr
    assert not Page(0, None, 10, 10).needs_ocr
    assert not Page(0, image, 10, 10, error="OCR failed").needs_ocr


def test_limits_name_the_numbers():
    settings = Settings(max_pages=3, max_page_pixels=100)
    check_page_count(3, settings)
    check_page_pixels(10, 10, settings)
    with pytest.raises(TooManyPagesError, match="4 pages, the limit is 3"):
        check_page_count(4, settings)
    with pytest.raises(TooManyPixelsError, match="10x11"):
        check_page_pixels(10, 11, settings)
