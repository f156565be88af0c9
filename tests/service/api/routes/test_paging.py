"""List paging: cursors round-trip, foreign cursors are refused, and cursor pages neither repeat nor skip
items when items are created between requests (offset pages do repeat one then)."""

import base64
import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from service.api.routes.paging import MAX_SEQUENCE, decode_cursor, encode_cursor, page_of, requested_cursor
from service.errors import InvalidCursorError
from tests.service.api.routes.test_documents import upload
from tests.service.api.routes.test_extract import problem
from tests.service.api.routes.test_training import queued_runs
from tests.service.support import job_files, words_document


@given(st.text(max_size=40), st.integers(0, MAX_SEQUENCE))
def test_cursors_round_trip(created: str, sequence: int):
    cursor = encode_cursor((created, sequence))
    assert decode_cursor(cursor) == (created, sequence)
    assert cursor.isascii() and "=" not in cursor and "/" not in cursor and "+" not in cursor


def forged(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    "text",
    [
        *("", "not a cursor", "%%%", forged({"a": 1}), forged(["2026", "7"]), forged(["2026", 1.5])),
        *(forged([1, 2]), forged(["2026", -1]), forged(["2026", 2**70]), forged(["2026", True])),
        forged(["a", 1, 2]),
    ],
)
def test_foreign_cursors_are_refused(text: str):
    with pytest.raises(InvalidCursorError):
        decode_cursor(text)


def test_requested_cursors():
    assert requested_cursor(5, None) is None  # offset paging
    assert requested_cursor(0, encode_cursor(("t", 3))) == ("t", 3)
    with pytest.raises(InvalidCursorError, match="not both"):
        requested_cursor(5, encode_cursor(("t", 3)))


def test_a_cursor_is_given_only_when_another_item_follows():
    rows = [{"created": "2026-11-26T10:00:00Z", "seq": n} for n in (9, 8, 7)]
    page, total, cursor = page_of((rows, 30), 2)  # the store fetched limit + 1 rows
    assert (page, total) == (rows[:2], 30)
    assert decode_cursor(cursor or "") == ("2026-11-26T10:00:00Z", 8)
    assert page_of((rows[:2], 2), 2) == (rows[:2], 2, None)  # a full last page: no cursor
    assert page_of((rows[:1], 1), 2) == (rows[:1], 1, None) and page_of(([], 0), 2) == ([], 0, None)


def listing(api: TestClient, **params: object) -> dict:
    response = api.get("/v1/documents", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_cursor_pages_survive_new_documents(api: TestClient):
    ids = [upload(api, words_document(n), f"{n}.json")["id"] for n in range(5)]
    first = listing(api, limit=2)
    assert [d["id"] for d in first["documents"]] == [ids[4], ids[3]]
    upload(api, words_document(99), "new.json")  # created between two page requests
    by_offset = listing(api, limit=2, offset=2)["documents"]
    assert by_offset[0]["id"] == ids[3]  # the offset page repeats an item: why cursors exist
    seen = [d["id"] for d in first["documents"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = listing(api, limit=2, after=cursor)
        seen += [d["id"] for d in page["documents"]]
        cursor = page["next_cursor"]
    assert seen == ids[::-1]


def test_bad_cursor_requests_are_problems(api: TestClient):
    upload(api, words_document(1))
    upload(api, words_document(2))
    cursor = listing(api, limit=1)["next_cursor"]
    assert cursor is not None
    for route in ("/v1/documents", "/v1/jobs", "/v1/training-runs"):
        problem(api.get(route, params={"after": "garbage"}), 422, "invalid-cursor")
        problem(api.get(route, params={"after": cursor, "offset": 1}), 422, "invalid-cursor")
        problem(api.get(route, params={"after": "x" * 300}), 422, "validation-error")


def test_every_list_answers_its_items_under_items_and_the_deprecated_key(api: TestClient, synthetic_dataset):
    """`items` is every list's key; the old key stays beside it, equal, until it is removed."""
    upload(api, words_document(1))
    upload(api, words_document(2))
    assert api.post("/v1/jobs", files=job_files(1)).status_code == 202
    queued_runs(api, synthetic_dataset, 1)
    old_keys = {
        "/v1/documents": "documents",
        "/v1/jobs": "jobs",
        "/v1/training-runs": "training_runs",
        "/v1/models": "models",
    }
    for route, old_key in old_keys.items():
        body = api.get(route).json()
        assert body["items"] and body["items"] == body[old_key], route
        assert body["total"] == len(body["items"]), route
    assert listing(api, limit=1)["items"] == listing(api, limit=1)["documents"]
    assert len(listing(api, limit=1)["items"]) == 1 and listing(api, limit=1)["total"] == 3
    models = api.get("/v1/models").json()
    assert [m["id"] for m in models["items"]] == ["default"] and models["active"] == "default"
