"""Commercial templates: invoices, purchase orders and receipts (the `invoice` label schema's pages)."""

from model.synth import blocks
from model.synth.canvas import Canvas
from model.synth.fields import INVOICE_HEAD_FIELDS, TOTAL_FIELDS
from model.synth.templates import TEMPLATES, Template, letterhead, sample_fields

ITEM_KINDS: tuple[tuple[str, ...], ...] = (
    ("number", "product", "amount", "amount"),
    ("code", "product", "number", "amount"),
    ("product", "number", "amount"),
    ("code", "words", "amount"),
    ("number", "code", "product", "amount", "amount"),
)


def _head_fields(c: Canvas, y: int, fields: tuple[str, ...]) -> int:
    """Document numbers and dates: a column at the right half, or a full-width grid."""
    if c.rng.random() < 0.5:
        half = c.left + c.width // 2
        return blocks.kv_column(c, y, fields, half, c.right)
    return blocks.kv_grid(c, y, fields, c.rng.choice((2, 3)))


def _parties(c: Canvas, y: int, fields: tuple[str, ...]) -> int:
    """Bill-to / ship-to / vendor blocks, side by side with their address below the key."""
    col = c.width // len(fields)
    bottom = y
    for i, name in enumerate(fields):
        x = c.left + i * col
        bottom = max(bottom, blocks.kv(c, x, y, name, x + col - c.px(20), "below"))
    return bottom + c.gap(12, 24)


def _totals(c: Canvas, y: int) -> int:
    x0 = c.left + int(c.width * c.rng.uniform(0.45, 0.65))
    fields = TOTAL_FIELDS if c.rng.random() < 0.6 else ("total",)
    return blocks.kv_column(c, y, fields, x0, c.right)


def invoice(c: Canvas) -> str:
    y = letterhead(c, c.top)
    _, y = blocks.title(c, y, c.rng.choice(("INVOICE", "Invoice", "STATEMENT", "COMMERCIAL INVOICE", "BILL")))
    y = _head_fields(c, y, sample_fields(c, INVOICE_HEAD_FIELDS, 2, 5))
    variant = c.rng.choice(("bill-ship", "bill", "vendor-bill"))
    parties = {
        "bill-ship": ("bill_to", "ship_to"),
        "bill": ("bill_to",),
        "vendor-bill": ("vendor", "bill_to"),
    }
    y = _parties(c, y, parties[variant])
    y = blocks.table(c, y, c.rng.choice(ITEM_KINDS), c.rng.randint(2, 9))
    if c.fits(y, 4):
        y = _totals(c, y)
    if c.fits(y, 3) and c.rng.random() < 0.4:
        y = blocks.paragraph(c, y, kind="sentence", lines=2)
    return variant


def purchase_order(c: Canvas) -> str:
    y = letterhead(c, c.top) if c.rng.random() < 0.7 else c.top
    _, y = blocks.title(
        c, y, c.rng.choice(("PURCHASE ORDER", "Purchase Order", "ORDER FORM", "PURCHASE REQUISITION"))
    )
    y = _head_fields(c, y, sample_fields(c, ("po_number", "date", "account", "terms", "due_date"), 2, 4))
    variant = c.rng.choice(("vendor-ship", "vendor"))
    y = _parties(c, y, ("vendor", "ship_to") if variant == "vendor-ship" else ("vendor",))
    y = blocks.table(c, y, c.rng.choice(ITEM_KINDS), c.rng.randint(2, 7))
    if c.fits(y, 4):
        y = _totals(c, y)
    if c.fits(y, 4):
        y = blocks.signatures(c, y, ("approved_by", "date"))
    return variant


def receipt(c: Canvas) -> str:
    """A narrow till receipt in the middle of the page: shop, date, item lines, total."""
    narrow = int(c.width * c.rng.uniform(0.45, 0.7))
    left = c.left + c.rng.randint(0, c.width - narrow)
    c.margins = (left, c.margins[1], c.image.width - left - narrow, c.margins[3])
    y = letterhead(c, c.top)
    variant = c.rng.choice(("lines", "table"))
    y = blocks.kv_column(
        c, y, sample_fields(c, ("date", "time", "invoice_number", "phone"), 1, 3), c.left, c.right
    )
    if variant == "table":
        y = blocks.table(c, y, ("product", "amount"), c.rng.randint(2, 8))
    else:
        for _ in range(c.rng.randint(2, 8)):
            if c.fits(y, 4):
                y = _item_line(c, y)
    if c.fits(y, 3):
        y = _totals(c, y + c.gap())
    if c.fits(y, 2) and c.rng.random() < 0.6:
        blocks.paragraph(c, y, kind="sentence", lines=2)
    return variant


def _item_line(c: Canvas, y: int) -> int:
    """One receipt line: description on the left (other), price at the right (other)."""
    price = c.values.make("amount")
    width = c.fonts.value.getlength(price)
    item = c.text(
        "other", c.values.make("product"), c.left, y, c.fonts.value, None, c.right - width - c.px(20), 1
    )
    amount = c.text("other", price, c.right - width, y, c.fonts.value)
    return max(e.bottom for e in (item, amount) if e) + c.px(3) if item or amount else y + c.px(12)


COMMERCE_TEMPLATES: dict[str, Template] = {
    "invoice": invoice,
    "purchase_order": purchase_order,
    "receipt": receipt,
}
ALL_TEMPLATES: dict[str, Template] = {**TEMPLATES, **COMMERCE_TEMPLATES}
