"""Page templates: fax cover sheets, memos, questionnaires, applications, reports with tables, letters,
check-box forms (here) and invoices, purchase orders, receipts (`model.synth.commerce`).

A template fills a canvas and returns its layout variant; `TEMPLATES` maps names to templates.
"""

from collections.abc import Callable

from model.synth import blocks
from model.synth.canvas import Canvas, Entity
from model.synth.fields import (
    APPLICATION_FIELDS,
    FAX_FIELDS,
    GENERIC_FIELDS,
    MEMO_FIELDS,
    REPORT_FIELDS,
    SECTION_TITLES,
)

Template = Callable[[Canvas], str]

FAX_TITLES = ("FAX COVER SHEET", "FACSIMILE TRANSMISSION", "TELECOPY COVER SHEET", "FAX TRANSMITTAL", "FAX")
MEMO_TITLES = ("MEMORANDUM", "INTER-OFFICE MEMORANDUM", "INTEROFFICE CORRESPONDENCE", "MEMO", "Memorandum")
SURVEY_TITLES = ("CONSUMER QUESTIONNAIRE", "PANEL SURVEY", "PRODUCT EVALUATION", "SMOKER QUESTIONNAIRE")
APPLICATION_TITLES = (
    "APPLICATION FOR EMPLOYMENT",
    "GRANT APPLICATION",
    "REQUEST FOR APPROVAL",
    "ENROLLMENT FORM",
)
REPORT_TITLES = (
    "TEST REPORT",
    "LABORATORY ANALYSIS",
    "PROJECT STATUS REPORT",
    "MONTHLY REPORT",
    "BUDGET REVIEW",
)
CHECK_TITLES = ("CHECKLIST", "EVALUATION FORM", "INSPECTION REPORT", "ROUTING SLIP", "ACTION REQUEST")


def sample_fields(c: Canvas, pool: tuple[str, ...], low: int, high: int) -> tuple[str, ...]:
    count = min(len(pool), c.rng.randint(low, high))
    chosen = c.rng.sample(pool, count)
    return tuple(chosen) if c.rng.random() < 0.5 else tuple(f for f in pool if f in chosen)


def letterhead(c: Canvas, y: int) -> int:
    """Company name (header) with address and phone lines (other), centred or left."""
    centre = c.rng.random() < 0.6
    name = c.values.make("company").upper() if c.rng.random() < 0.6 else c.values.make("company")
    lines = [c.values.make("street"), c.values.make("city")]
    if c.rng.random() < 0.6:
        lines.append(f"{c.rng.choice(('Tel.', 'Phone', 'TELEPHONE'))} {c.values.make('phone')}")
    y = _centred(c, "header", name, y, c.fonts.section if c.rng.random() < 0.5 else c.fonts.title, centre)
    for line in lines:
        y = _centred(c, "other", line, y, c.fonts.small, centre)
    if c.rng.random() < 0.5:
        c.rule(c.left, y + c.px(2), c.right, y + c.px(2), c.rng.choice((1.0, 2.0)))
    return y + c.gap(12, 26)


def _centred(c: Canvas, role: str, text: str, y: int, font: object, centre: bool) -> int:
    width = font.getlength(text)  # type: ignore[attr-defined]
    x = max(c.left, (c.left + c.right - width) / 2) if centre else c.left
    entity = c.text(role, text, x, y, font)  # type: ignore[arg-type]
    return (entity.bottom if entity else y) + c.px(2)


def _sections(c: Canvas, y: int, pool: tuple[str, ...], count: int) -> int:
    for _ in range(count):
        if not c.fits(y, 4):
            break
        head, y = blocks.section(c, y, c.rng.choice(SECTION_TITLES))
        fields = sample_fields(c, pool, 2, 6)
        if c.rng.random() < 0.5:
            y = blocks.kv_grid(c, y, fields, c.rng.choice((2, 2, 3)), head)
        else:
            y = blocks.kv_column(c, y, fields, c.left, c.right, head)
    return y


def fax_cover(c: Canvas) -> str:
    y = letterhead(c, c.top) if c.rng.random() < 0.6 else c.top
    _, y = blocks.title(c, y, c.rng.choice(FAX_TITLES))
    variant = c.rng.choice(("column", "grid", "two-column"))
    fields = sample_fields(c, FAX_FIELDS, 4, 8)
    if variant == "column":
        y = blocks.kv_column(c, y, fields, c.left, c.right)
    elif variant == "grid":
        y = blocks.kv_grid(c, y, fields, 2)
    else:
        half = (c.left + c.right) // 2
        y = max(
            blocks.kv_column(c, y, fields[: len(fields) // 2], c.left, half - c.px(10)),
            blocks.kv_column(c, y, fields[len(fields) // 2 :], half, c.right),
        )
    if c.fits(y, 3):
        y = blocks.kv(c, c.left, y + c.gap(), "comments", c.right, "below") + c.gap(10, 24)
    if c.fits(y, 3) and c.rng.random() < 0.6:
        y = blocks.paragraph(c, y, kind="paragraph", lines=4)
    return variant


def memo(c: Canvas) -> str:
    y = letterhead(c, c.top) if c.rng.random() < 0.4 else c.top
    _, y = blocks.title(c, y, c.rng.choice(MEMO_TITLES))
    fields = tuple(f for f in MEMO_FIELDS if f in ("to", "from", "subject") or c.rng.random() < 0.7)
    variant = c.rng.choice(("column", "grid"))
    y = (
        blocks.kv_column(c, y, fields, c.left, c.right)
        if variant == "column"
        else blocks.kv_grid(c, y, fields, 2)
    )
    c.rule(c.left, y, c.right, y, c.rng.choice((1.0, 2.0)))
    y += c.gap(10, 20)
    for _ in range(c.rng.randint(1, 4)):
        if not c.fits(y, 3):
            break
        y = blocks.paragraph(c, y, c.left + c.rng.choice((0, 0, c.px(30))))
    if c.fits(y, 3) and c.rng.random() < 0.5:
        y = blocks.kv_column(c, y, ("cc",), c.left, c.right)
    return variant


def questionnaire(c: Canvas) -> str:
    _, y = blocks.title(c, c.top, c.rng.choice(SURVEY_TITLES))
    y = blocks.kv_grid(c, y, sample_fields(c, ("name", "date", "brand", "sample", "phone", "city"), 2, 4), 2)
    head, y = blocks.section(c, y, c.rng.choice(("QUESTIONS", "PART A", "SECTION 1", "PREFERENCE")))
    variant = c.rng.choice(("checks", "open", "mixed"))
    while c.fits(y, 4):
        if variant == "checks" or (variant == "mixed" and c.rng.random() < 0.5):
            y = blocks.checkbox_question(c, y, head)
        else:
            y = blocks.kv(
                c,
                c.left,
                y,
                c.rng.choice(("comments", "description", "subject")),
                c.right,
                "below",
                None,
                head,
            )
            y += c.gap(10, 24)
    return variant


def application(c: Canvas) -> str:
    y = letterhead(c, c.top) if c.rng.random() < 0.5 else c.top
    _, y = blocks.title(c, y, c.rng.choice(APPLICATION_TITLES))
    variant = c.rng.choice(("sections", "grid"))
    if variant == "sections":
        y = _sections(c, y, (*APPLICATION_FIELDS, "department", "account"), c.rng.randint(2, 3))
    else:
        y = blocks.kv_grid(c, y, sample_fields(c, APPLICATION_FIELDS, 5, 9), c.rng.choice((2, 3)))
    if c.fits(y, 3):
        y = blocks.kv(c, c.left, y, "description", c.right, "below") + c.gap(10, 20)
    if c.fits(y, 4):
        y = blocks.signatures(c, y + c.gap(10, 30), ("signature", "date"))
    return variant


def report(c: Canvas) -> str:
    y = letterhead(c, c.top) if c.rng.random() < 0.3 else c.top
    _, y = blocks.title(c, y, c.rng.choice(REPORT_TITLES))
    y = blocks.kv_grid(c, y, sample_fields(c, REPORT_FIELDS, 3, 6), c.rng.choice((2, 3)))
    variant = c.rng.choice(("one-table", "two-tables", "table-text"))
    for number in range(2 if variant == "two-tables" else 1):
        head = None
        if c.rng.random() < 0.6:
            head, y = blocks.section(c, y, c.rng.choice(SECTION_TITLES))
        kinds = c.rng.sample(
            ("code", "brand", "measure", "measure", "number", "amount", "date", "percent"),
            c.rng.randint(2, 5),
        )
        y = blocks.table(c, y, tuple(kinds), c.rng.randint(2, 8 - 3 * number), head)
    if variant == "table-text" and c.fits(y, 3):
        y = blocks.paragraph(c, y)
    if c.fits(y, 4) and c.rng.random() < 0.6:
        y = blocks.signatures(c, y)
    return variant


def letter(c: Canvas) -> str:
    y = letterhead(c, c.top)
    variant = c.rng.choice(("block", "indented"))
    indent = c.px(c.rng.uniform(250, 380)) if variant == "indented" else 0
    date = c.text("other", c.values.make("date"), c.left + indent, y, c.fonts.value)
    y = (date.bottom if date else y) + c.gap(14, 30)
    for line in (
        c.values.make("name"),
        c.values.make("company"),
        c.values.make("street"),
        c.values.make("city"),
    ):
        entity = c.text("other", line, c.left, y, c.fonts.value)
        y = (entity.bottom if entity else y) + c.px(3)
    y += c.gap(10, 20)
    if c.rng.random() < 0.7:
        y = blocks.kv(c, c.left + c.rng.choice((0, c.px(40))), y, "subject", c.right) + c.gap(10, 20)
    salutation = c.text("other", f"Dear {c.values.make('name')}:", c.left, y, c.fonts.value)
    y = (salutation.bottom if salutation else y) + c.gap(8, 16)
    for _ in range(c.rng.randint(1, 3)):
        if c.fits(y, 4):
            y = blocks.paragraph(c, y)
    for line in ("Sincerely,", c.values.make("name"), c.values.make("job")):
        if c.fits(y, 2):
            entity = c.text("other", line, c.left + indent, y, c.fonts.value)
            y = (entity.bottom if entity else y) + c.gap(4, 20)
    if c.fits(y, 2) and c.rng.random() < 0.5:
        y = blocks.kv(c, c.left, y + c.gap(), "cc", c.right)
    return variant


def checkbox_form(c: Canvas) -> str:
    _, y = blocks.title(c, c.top, c.rng.choice(CHECK_TITLES))
    y = blocks.kv_grid(c, y, sample_fields(c, GENERIC_FIELDS, 2, 5), c.rng.choice((2, 3)))
    variant = c.rng.choice(("sections", "flat", "numbered"))
    head: Entity | None = None
    for number in range(1, c.rng.randint(4, 12)):
        if not c.fits(y, 4):
            break
        if variant == "sections" and c.rng.random() < 0.3:
            head, y = blocks.section(c, y, c.rng.choice(SECTION_TITLES))
        y = blocks.checkbox_question(c, y, head, number if variant == "numbered" else None)
    return variant


def fill(c: Canvas, y: int) -> int:
    """More generic blocks below a template's own content: down to 70% of the page at least, then until the
    page is full or the dice say stop."""
    rng = c.rng
    while c.fits(y, 5) and (y < c.image.height * 0.7 or rng.random() < 0.75):
        choice = rng.choices(
            ("section", "column", "text", "table", "check", "comments", "sign"), (3, 2, 2, 1, 1, 1, 1)
        )
        if choice[0] == "section":
            y = _sections(c, y, GENERIC_FIELDS, 1)
        elif choice[0] == "column":
            y = blocks.kv_column(c, y, sample_fields(c, GENERIC_FIELDS, 2, 5), c.left, c.right)
        elif choice[0] == "text":
            y = blocks.paragraph(c, y, lines=rng.randint(2, 8))
        elif choice[0] == "table":
            kinds = rng.sample(
                ("code", "brand", "measure", "number", "amount", "date", "name", "words"), rng.randint(2, 5)
            )
            y = blocks.table(c, y, tuple(kinds), rng.randint(2, 6))
        elif choice[0] == "check":
            y = blocks.checkbox_question(c, y)
        elif choice[0] == "comments":
            y = blocks.kv(c, c.left, y, rng.choice(("comments", "description")), c.right, "below") + c.gap(
                10, 24
            )
        else:
            y = blocks.signatures(c, y)
    return y


TEMPLATES: dict[str, Template] = {
    "fax_cover": fax_cover,
    "memo": memo,
    "questionnaire": questionnaire,
    "application": application,
    "report": report,
    "letter": letter,
    "checkbox_form": checkbox_form,
}
