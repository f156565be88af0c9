"""Page selections: `"1-3,5"` parsed into ranges of 1-based pages, and resolved against a page count."""

import re

from service.errors import PageSelectionError

_RANGE = re.compile(r"^(\d+)(?:\s*-\s*(\d+))?$")
PAGE_NUMBER_CAP = 10**9  # more pages than any document has: "2-99999999999999999999" means page 2 to the end


def _page_number(digits: str) -> int:
    """The number `digits` spell, capped at PAGE_NUMBER_CAP (never parsed past it: no 5,000-digit ints)."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) < len(str(PAGE_NUMBER_CAP)) else PAGE_NUMBER_CAP


def parse_page_selection(spec: str) -> list[tuple[int, int]]:
    """`"1-3,5"` -> `[(1, 3), (5, 5)]`: 1-based inclusive ranges. PageSelectionError on bad syntax."""
    ranges: list[tuple[int, int]] = []
    for part in spec.split(","):
        match = _RANGE.match(part.strip())
        if match is None:
            raise PageSelectionError(
                f"bad page selection {spec[:100]!r}: expected pages like '1-3,5', got {part[:100]!r}"
            )
        first, last = _page_number(match.group(1)), _page_number(match.group(2) or match.group(1))
        if first < 1 or last < first:
            raise PageSelectionError(
                f"bad page selection {spec[:100]!r}: {part.strip()!r} is not a range of pages"
            )
        ranges.append((first, last))
    return ranges


def selected_pages(spec: str | None, page_count: int) -> list[int]:
    """Sorted 0-based indices of the selected pages that the document has (all when `spec` is None or
    blank); selected pages beyond the end are left out."""
    if spec is None or not spec.strip():
        return list(range(page_count))
    ranges = parse_page_selection(spec)
    return sorted({page - 1 for first, last in ranges for page in range(first, min(last, page_count) + 1)})


def last_selected_page(spec: str | None) -> int | None:
    """The last page a selection names (None: no selection, every page)."""
    if spec is None or not spec.strip():
        return None
    return max(last for _, last in parse_page_selection(spec))


def resolve_page_selection(spec: str | None, page_count: int) -> list[int]:
    """Sorted 0-based indices of the selected pages (all when `spec` is None or blank); PageSelectionError
    when a selected page is beyond the end."""
    last = last_selected_page(spec)
    if last is not None and last > page_count:
        raise PageSelectionError(f"page {last} is not in the document: it has {page_count} page(s)")
    return selected_pages(spec, page_count)
