"""Layout blocks shared by the templates: titles, key-value pairs (value right of, below or above its key),
columns and grids of pairs, section headers, tables, check boxes, signatures, free text, Bates numbers.

Every block takes the canvas and a top `y` (render pixels) and returns the `y` below what it drew.
"""

from model.synth.canvas import Canvas, Entity
from model.synth.fields import FIELDS, OPTIONS, QUESTIONS, key_text

PLACEMENTS: tuple[str, ...] = ("right", "below", "above")


def title(c: Canvas, y: int, text: str, align: str | None = None) -> tuple[Entity | None, int]:
    """A page title (header), centred or left; optionally underlined or boxed."""
    font = c.fonts.title
    align = align or c.rng.choice(("center", "center", "left", "right"))
    width = font.getlength(text)
    x = {"center": (c.left + c.right - width) / 2, "left": c.left, "right": c.right - width}[align]
    entity = c.text("header", text, max(c.left, x), y, font)
    if entity is None:
        return None, y
    if c.rng.random() < 0.3:
        c.rule(entity.box[0], entity.bottom + c.px(3), entity.box[2], entity.bottom + c.px(3), 1.5)
    return entity, entity.bottom + c.gap(10, 28)


def section(c: Canvas, y: int, text: str) -> tuple[Entity | None, int]:
    """A section header, sometimes ruled above or set on a full-width rule."""
    if not c.fits(y, 3):
        return None, y
    if c.rng.random() < 0.35:
        c.rule(c.left, y, c.right, y, c.rng.choice((1.0, 2.0)))
        y += c.gap(4, 8)
    entity = c.text("header", text, c.left + c.rng.choice((0, 0, c.px(20))), y, c.fonts.section)
    return entity, (entity.bottom if entity else y) + c.gap(6, 14)


def kv(
    c: Canvas,
    x: int,
    y: int,
    field_name: str,
    max_x: int | None = None,
    placement: str = "right",
    tab: int | None = None,
    header: Entity | None = None,
) -> int:
    """One key and its value: the value right of (at `tab` when given), below, or above the key (then the
    key sits under a rule, like a signature line). Sometimes the value is missing (an empty field)."""
    spec, rng = FIELDS[field_name], c.rng
    max_x = max_x or c.right
    value = "" if rng.random() < 0.1 else c.values.make(spec.kind)
    if placement == "above" and value:
        return _kv_above(c, x, y, field_name, value, max_x, header)
    key = c.text("question", key_text(rng, spec), x, y, c.fonts.key, field_name, max_x)
    if key is None:
        return y
    c.link(header, key)
    vx, vy = max(key.right + c.gap(6, 20), tab or 0), y
    if placement == "right" and value and vx + c.text_width(value, c.fonts.value) > max_x:
        tight = vx + c.fonts.value.getlength(max(value.split(), key=len)) > max_x or vx > max_x - c.px(150)
        placement = "below" if tight or rng.random() < 0.5 else placement
    if placement == "below":
        vx, vy = x + rng.choice((0, 0, c.px(15), c.px(30))), key.bottom + c.gap(2, 8)
    answer = c.text("answer", value, vx, vy, c.fonts.value, field_name, max_x, 4) if value else None
    c.link(key, answer)
    bottom = max(key.bottom, answer.bottom if answer else key.bottom)
    if rng.random() < 0.3 and placement == "right":
        c.rule(
            vx - c.px(2),
            bottom + c.px(2),
            max_x if answer is None else answer.right + c.px(8),
            bottom + c.px(2),
        )
    return bottom


def _kv_above(
    c: Canvas, x: int, y: int, field_name: str, value: str, max_x: int, header: Entity | None
) -> int:
    font = c.fonts.script if c.rng.random() < 0.5 else c.fonts.value  # signed or typed
    answer = c.text("answer", value, x + c.px(c.rng.uniform(0, 20)), y, font, field_name, max_x, 2)
    line_y = (answer.bottom if answer else y) + c.px(3)
    c.rule(x, line_y, min(max_x, x + c.px(c.rng.uniform(140, 260))), line_y)
    key = c.text(
        "question", key_text(c.rng, FIELDS[field_name]), x, line_y + c.px(3), c.fonts.small, field_name
    )
    c.link(header, key)
    c.link(key, answer)
    return key.bottom if key else line_y


def kv_column(
    c: Canvas, y: int, fields: tuple[str, ...], x0: int, x1: int, header: Entity | None = None
) -> int:
    """Pairs one under the other between x0 and x1; aligned values at a tab stop or ragged."""
    rng = c.rng
    placement = rng.choices(PLACEMENTS, weights=(6, 2, 1))[0]
    longest = max(c.fonts.key.getlength(FIELDS[f].keys[0] + ":") for f in fields)
    tab = x0 + round(longest) + c.gap(8, 30) if rng.random() < 0.6 else None
    for name in fields:
        if not c.fits(y, 2):
            break
        local = placement if rng.random() < 0.85 else rng.choice(PLACEMENTS)
        y = kv(c, x0, y, name, x1, local, tab, header) + c.gap(6, 22)
    return y


def kv_grid(c: Canvas, y: int, fields: tuple[str, ...], columns: int, header: Entity | None = None) -> int:
    """Pairs in `columns` columns, row by row, sometimes in ruled cells."""
    col_width = c.width // columns
    boxed = c.rng.random() < 0.3
    for start in range(0, len(fields), columns):
        if not c.fits(y, 3):
            break
        row_top, bottom = y, y
        for i, name in enumerate(fields[start : start + columns]):
            x0 = c.left + i * col_width + (c.px(4) if boxed else 0)
            placement = "below" if boxed else c.rng.choice(("right", "right", "below"))
            bottom = max(
                bottom,
                kv(
                    c,
                    x0,
                    y + (c.px(3) if boxed else 0),
                    name,
                    x0 + col_width - c.px(10),
                    placement,
                    None,
                    header,
                ),
            )
        y = bottom + c.gap(6, 18)
        if boxed:
            for i in range(columns):
                c.rect((c.left + i * col_width, row_top - c.px(3), c.left + (i + 1) * col_width, y - c.px(3)))
    return y


def paragraph(c: Canvas, y: int, x0: int | None = None, kind: str = "paragraph", lines: int = 8) -> int:
    """Running text (`other`)."""
    entity = c.text("other", c.values.make(kind), x0 or c.left, y, c.fonts.value, None, c.right, lines)
    return (entity.bottom if entity else y) + c.gap(8, 20)


def table(c: Canvas, y: int, kinds: tuple[str, ...], rows: int, header: Entity | None = None) -> int:
    """Column heads (questions) over rows of cells (answers linked to their column head); ruled or not.
    Sometimes the first column holds row heads (questions linked to the other cells of their row)."""
    rng, widths = c.rng, _column_widths(c, len(kinds))
    ruled, row_heads = rng.random() < 0.6, len(kinds) > 2 and rng.random() < 0.35
    xs = [c.left + sum(widths[:i]) for i in range(len(kinds) + 1)]
    heads = [
        c.text(
            "question", _column_name(c, kind), xs[i] + c.px(3), y, c.fonts.key, None, xs[i + 1] - c.px(3), 2
        )
        for i, kind in enumerate(kinds)
    ]
    for head in heads:
        c.link(header, head)
    y = max([h.bottom for h in heads if h] + [y]) + c.gap(4, 8)
    top = y
    c.rule(c.left, y, c.right, y, 1.0)
    y += c.gap(3, 6)
    for _ in range(rows):
        if not c.fits(y, 2):
            break
        y = _table_row(c, y, kinds, xs, heads, row_heads)
        if ruled:
            c.rule(c.left, y - c.px(2), c.right, y - c.px(2))
    if ruled:
        for x in xs:
            c.rule(x, top, x, y - c.px(2))
    return y + c.gap(8, 18)


def _table_row(
    c: Canvas, y: int, kinds: tuple[str, ...], xs: list[int], heads: list[Entity | None], row_heads: bool
) -> int:
    row_bottom, row_head = y + c.line_height(c.fonts.value), None
    for i, kind in enumerate(kinds):
        role = "question" if row_heads and i == 0 else "answer"
        font = c.fonts.key if role == "question" else c.fonts.value
        cell = c.text(role, c.values.make(kind), xs[i] + c.px(3), y, font, None, xs[i + 1] - c.px(3), 2)
        if role == "question":
            row_head = cell
        else:
            c.link(heads[i], cell)
            c.link(row_head, cell)
        row_bottom = max(row_bottom, cell.bottom if cell else row_bottom)
    return row_bottom + c.gap(3, 8)


COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "code": ("ITEM NO.", "CODE", "Sample", "Lot", "No."), "amount": ("AMOUNT", "Price", "COST", "Total"),
    "number": ("QTY", "Quantity", "Count", "N"), "date": ("DATE", "Date", "Period"),
    "name": ("NAME", "Contact", "Responsible"), "brand": ("BRAND", "Brand", "Product"),
    "measure": ("WEIGHT", "Length", "Value", "Result", "Tar", "Nic"),
    "words": ("DESCRIPTION", "Item", "Remarks"),
    "percent": ("%", "Share", "Percent"), "product": ("DESCRIPTION", "Article", "Item"),
}  # fmt: skip


def _column_name(c: Canvas, kind: str) -> str:
    name = c.rng.choice(COLUMN_NAMES.get(kind, ("VALUE",)))
    return name.upper() if c.rng.random() < 0.5 else name


def _column_widths(c: Canvas, count: int) -> list[int]:
    weights = [c.rng.uniform(0.7, 1.6) for _ in range(count)]
    total = sum(weights)
    return [int(c.width * w / total) for w in weights]


def question_text(c: Canvas, number: int | None = None) -> str:
    """A yes/no or rating question: from the list, or a made-up one; sometimes numbered."""
    if c.rng.random() < 0.5:
        text = c.rng.choice(QUESTIONS)
    else:
        text = c.values.fake.sentence(nb_words=c.rng.randint(3, 8)).rstrip(".") + "?"
    return f"{number}. {text}" if number is not None else text


def checkbox_question(c: Canvas, y: int, header: Entity | None = None, number: int | None = None) -> int:
    """A question with check-box options: the ticked option is its answer, the others are `other`."""
    rng = c.rng
    text = question_text(c, number)
    question = c.text("question", text, c.left, y, c.fonts.key, None, c.right - c.px(200), 2)
    if question is None:
        return y
    c.link(header, question)
    options, ticked = rng.choice(OPTIONS), rng.randrange(-1, 4)
    inline = rng.random() < 0.6
    box = c.fonts.value.size * 0.8
    if inline:
        x, oy = question.right + c.gap(12, 30), question.box[1]
    else:
        x, oy = c.left + c.px(20), question.bottom + c.gap(4, 8)
    bottom = question.bottom
    for i, option in enumerate(options):
        if x + c.px(90) > c.right:
            x, oy = c.left + c.px(20), bottom + c.gap(4, 8)
        c.checkbox(x, oy + box * 0.2, box, i == ticked)
        entity = c.text("answer" if i == ticked else "other", option, x + box * 1.6, oy, c.fonts.value)
        if entity:
            if i == ticked:
                c.link(question, entity)
            x, bottom = entity.right + c.gap(14, 36), max(bottom, entity.bottom)
    return bottom + c.gap(8, 20)


def signatures(c: Canvas, y: int, fields: tuple[str, ...] = ("approved_by", "prepared_by", "date")) -> int:
    """Signature lines side by side: names above the rule, keys below."""
    chosen = fields[: c.rng.randint(1, len(fields))]
    col = c.width // len(chosen)
    bottom = y
    for i, name in enumerate(chosen):
        x = c.left + i * col
        bottom = max(bottom, kv(c, x, y + c.px(10), name, x + col - c.px(20), "above"))
    return bottom + c.gap(8, 20)


FOOTERS = ("qip.wp", "FORM {n} (REV. {m}/8{d})", "Page 1 of {d}", "{n}-{m}", "CONFIDENTIAL", "rev. {m}/9{d}")


def page_marks(c: Canvas) -> None:
    """Unlinked `other` text in the bottom margin: a Bates number at the right, a form code at the left;
    the canvas bottom moves above them."""
    rng, marks = c.rng, []
    if rng.random() < 0.35:
        text = rng.choice(FOOTERS).format(n=rng.randint(100, 9999), m=rng.randint(1, 12), d=rng.randint(1, 9))
        marks.append(c.text("other", text, c.left, c.bottom - c.fonts.small.size * 1.3, c.fonts.small))
    if rng.random() < 0.5:
        text, font = str(rng.randint(10**8, 10**10 - 1)), c.fonts.section
        marks.append(c.text("other", text, c.right - font.getlength(text), c.bottom - font.size * 1.3, font))
    tops = [m.box[1] for m in marks if m is not None]
    if tops:
        left, top, right, _ = c.margins
        c.margins = (left, top, right, c.image.height - min(tops) + c.gap(10, 30))
