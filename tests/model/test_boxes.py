import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.boxes import (
    GRID,
    contains_box,
    denormalize_box,
    group_lines,
    is_valid_box,
    line_boxes,
    normalize_box,
    order_box,
    reading_order,
    union_box,
)

coordinate = st.floats(min_value=-500, max_value=5000, allow_nan=False)
raw_box = st.tuples(coordinate, coordinate, coordinate, coordinate)
extent = st.integers(min_value=1, max_value=4000)


@given(raw_box)
def test_order_box_is_ordered_and_idempotent(box):
    x0, y0, x1, y1 = order_box(box)
    assert x0 <= x1 and y0 <= y1
    assert order_box((x0, y0, x1, y1)) == (x0, y0, x1, y1)


@given(raw_box, extent, extent)
def test_normalize_box_is_ordered_ints_on_the_grid(box, width, height):
    result = normalize_box(box, width, height)
    assert all(isinstance(v, int) and 0 <= v <= GRID for v in result)
    assert result[0] <= result[2] and result[1] <= result[3]


@given(extent, extent, st.data())
def test_normalize_then_denormalize_is_within_one_grid_cell(width, height, data):
    x0 = data.draw(st.integers(0, width))
    x1 = data.draw(st.integers(x0, width))
    y0 = data.draw(st.integers(0, height))
    y1 = data.draw(st.integers(y0, height))
    back = denormalize_box(normalize_box((x0, y0, x1, y1), width, height), width, height)
    for value, original, size in zip(back, (x0, y0, x1, y1), (width, height, width, height), strict=True):
        assert abs(value - original) <= size / GRID


def test_normalize_box_examples():
    assert normalize_box((0, 0, 762, 1000), 762, 1000) == (0, 0, 1000, 1000)
    assert normalize_box((381, 500, 0, 0), 762, 1000) == (0, 0, 500, 500)
    assert normalize_box((-10, -10, 9000, 9000), 100, 100) == (0, 0, 1000, 1000)
    with pytest.raises(ValueError):
        normalize_box((0, 0, 1, 1), 0, 10)


@given(st.lists(raw_box, min_size=1, max_size=8))
def test_union_box_contains_every_box(boxes):
    union = union_box(boxes)
    assert all(contains_box(union, box) for box in boxes)


def test_union_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        union_box([])


def test_is_valid_box():
    assert is_valid_box((0, 0, 10, 10), 10, 10)
    assert not is_valid_box((5, 0, 4, 10), 10, 10)
    assert not is_valid_box((0, 0, 11, 10), 10, 10)
    assert not is_valid_box((-1, 0, 5, 5), 10, 10)


def _word_row(y: int, xs: list[int], height: int = 10) -> list[tuple[int, int, int, int]]:
    return [(x, y, x + 20, y + height) for x in xs]


def test_group_lines_and_reading_order():
    boxes = _word_row(100, [300, 10, 150]) + _word_row(20, [50, 5]) + _word_row(102, [500])
    lines = group_lines(boxes)
    assert lines == [1, 1, 1, 0, 0, 1]
    assert reading_order(boxes, lines) == [4, 3, 1, 2, 0, 5]


def test_line_boxes_are_the_union_of_the_line():
    boxes = [(0, 0, 10, 10), (20, 2, 30, 12), (0, 50, 10, 60)]
    assert line_boxes(boxes, [0, 0, 1]) == [(0, 0, 30, 12), (0, 0, 30, 12), (0, 50, 10, 60)]


@given(
    st.lists(
        st.tuples(st.integers(0, 900), st.integers(0, 900), st.integers(1, 80), st.integers(1, 30)),
        max_size=40,
    )
)
def test_line_properties(raw):
    boxes = [(x, y, x + w, y + h) for x, y, w, h in raw]
    lines = group_lines(boxes)
    assert len(lines) == len(boxes)
    order = reading_order(boxes, lines)
    assert sorted(order) == list(range(len(boxes)))
    for box, line_box in zip(boxes, line_boxes(boxes, lines), strict=True):
        assert contains_box(line_box, box)
    ordered_lines = [lines[i] for i in order]
    assert ordered_lines == sorted(ordered_lines)
