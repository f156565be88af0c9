"""Box geometry as small pure functions.

Conventions: every box is `(x0, y0, x1, y1)`. `box_px` is in page-image pixels; `box` is on the model's
0-1000 integer grid. Nothing here imports torch.
"""

from collections.abc import Iterable, Sequence

GRID = 1000

BoxPx = tuple[float, float, float, float]
Box = tuple[int, int, int, int]


def order_box(box: Sequence[float]) -> BoxPx:
    """Return the box with x0 <= x1 and y0 <= y1."""
    x0, y0, x1, y1 = box
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def is_valid_box(box: Sequence[float], width: float, height: float) -> bool:
    """True when the box is ordered and lies inside a `width` x `height` page."""
    x0, y0, x1, y1 = box
    return 0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height


def normalize_box(box_px: Sequence[float], width: float, height: float) -> Box:
    """Pixel box on a `width` x `height` page -> ordered box on the 0-1000 grid, clamped to the grid."""
    if width <= 0 or height <= 0:
        raise ValueError(f"page size must be positive, got {width}x{height}")
    x0, y0, x1, y1 = order_box(box_px)

    def scale(value: float, extent: float) -> int:
        return min(GRID, max(0, round(GRID * value / extent)))

    return (scale(x0, width), scale(y0, height), scale(x1, width), scale(y1, height))


def denormalize_box(box: Sequence[int], width: float, height: float) -> BoxPx:
    """Grid box -> pixel box on a `width` x `height` page."""
    x0, y0, x1, y1 = box
    return (x0 * width / GRID, y0 * height / GRID, x1 * width / GRID, y1 * height / GRID)


def union_box(boxes: Iterable[Sequence[float]]) -> BoxPx:
    """Smallest box that holds every given box. Raises ValueError on no boxes."""
    ordered = [order_box(b) for b in boxes]
    if not ordered:
        raise ValueError("union of no boxes")
    return (
        min(b[0] for b in ordered),
        min(b[1] for b in ordered),
        max(b[2] for b in ordered),
        max(b[3] for b in ordered),
    )


def contains_box(outer: Sequence[float], inner: Sequence[float], tolerance: float = 0.0) -> bool:
    """True when `inner` lies inside `outer` (with `tolerance` pixels of slack on each side)."""
    ox0, oy0, ox1, oy1 = order_box(outer)
    ix0, iy0, ix1, iy1 = order_box(inner)
    return (
        ix0 >= ox0 - tolerance
        and iy0 >= oy0 - tolerance
        and ix1 <= ox1 + tolerance
        and iy1 <= oy1 + tolerance
    )


def group_lines(boxes_px: Sequence[Sequence[float]], min_overlap: float = 0.5) -> list[int]:
    """Text-line id for each word box: words whose vertical extents overlap by at least `min_overlap` of the
    smaller height join one line. Lines are numbered top to bottom."""
    order = sorted(
        range(len(boxes_px)), key=lambda i: ((boxes_px[i][1] + boxes_px[i][3]) / 2, boxes_px[i][0])
    )
    lines: list[list[float]] = []  # [y0, y1] per line
    line_of = [0] * len(boxes_px)
    for index in order:
        _, y0, _, y1 = order_box(boxes_px[index])
        for line_id, (ly0, ly1) in enumerate(lines):
            overlap = min(y1, ly1) - max(y0, ly0)
            if overlap >= min_overlap * max(min(y1 - y0, ly1 - ly0), 1e-6):
                line_of[index] = line_id
                lines[line_id] = [min(ly0, y0), max(ly1, y1)]
                break
        else:
            line_of[index] = len(lines)
            lines.append([y0, y1])
    rank = {old: new for new, old in enumerate(sorted(range(len(lines)), key=lambda i: lines[i][0]))}
    return [rank[line] for line in line_of]


def reading_order(boxes_px: Sequence[Sequence[float]], line_ids: Sequence[int]) -> list[int]:
    """Word indices in geometric reading order: lines top to bottom (by line id), words left to right."""
    return sorted(range(len(boxes_px)), key=lambda i: (line_ids[i], boxes_px[i][0], boxes_px[i][1]))


def line_boxes(boxes_px: Sequence[Sequence[float]], line_ids: Sequence[int]) -> list[BoxPx]:
    """Each word's line box: the union of the boxes of all words sharing its line id."""
    unions: dict[int, BoxPx] = {}
    for box, line in zip(boxes_px, line_ids, strict=True):
        unions[line] = union_box([box, unions[line]]) if line in unions else order_box(box)
    return [unions[line] for line in line_ids]
