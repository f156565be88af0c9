"""Page selections (most cases are in test_pages.py, through the documents they select from)."""

import pytest

from service.errors import PageSelectionError
from service.ingest.selection import PAGE_NUMBER_CAP, last_selected_page, resolve_page_selection


def test_the_last_selected_page_bounds_how_far_pages_are_counted():
    assert last_selected_page(None) is None and last_selected_page("  ") is None
    assert last_selected_page("7,2-4") == 7
    assert last_selected_page("2-" + "9" * 50) == PAGE_NUMBER_CAP
    with pytest.raises(PageSelectionError):
        last_selected_page("3-1")
    assert resolve_page_selection("2-3", 3) == [1, 2]
