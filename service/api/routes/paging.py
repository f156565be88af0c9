"""The paging of every list route (documents, jobs, training runs); lists are newest first.

Two ways through a list: `offset`, or `after` set to the previous page's `next_cursor`. An item created
between two requests shifts offset pages by one (an item is seen twice); a cursor page continues after the
last item seen, whatever was created meanwhile."""

import base64
import binascii
import json

from fastapi import Query

from service.errors import InvalidCursorError
from service.store import Cursor, Row

PageLimit = Query(100, ge=1, le=1000)
PageOffset = Query(0, ge=0, le=2**62)  # SQLite integers are 64-bit
PageAfter = Query(
    None,
    max_length=256,
    description="The previous page's `next_cursor`: this page starts after its last item (not with offset).",
)
MAX_SEQUENCE = 2**62


def requested_cursor(offset: int, after: str | None) -> Cursor | None:
    """The cursor a list request pages after (None: page by offset); a cursor that is not one of ours, or a
    cursor with an offset, is refused."""
    if after is None:
        return None
    if offset:
        raise InvalidCursorError("give either offset or after (a next_cursor), not both")
    return decode_cursor(after)


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(cursor)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    try:
        created, sequence = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise InvalidCursorError(f"{text!r} is not a next_cursor from this API") from None
    if not isinstance(created, str) or type(sequence) is not int or not 0 <= sequence <= MAX_SEQUENCE:
        raise InvalidCursorError(f"{text!r} is not a next_cursor from this API")
    return created, sequence


def page_of(fetched: tuple[list[Row], int], limit: int) -> tuple[list[Row], int, str | None]:
    """A page the store fetched with `limit + 1` rows: its first `limit` rows, the total, and the cursor of
    its last row when another row follows (None on the last page, a full one included)."""
    rows, total = fetched
    if len(rows) <= limit:
        return rows, total, None
    page = rows[:limit]
    return page, total, encode_cursor((str(page[-1]["created"]), int(page[-1]["seq"])))
