"""Label schemas: FUNSD's header/question/answer/other (default), or field-specific labels.

In a field schema (`invoice`) a key of a listed field is labelled `<field>_key`, its value `<field>`, and
everything else `other`; only key -> value links are kept.
"""

from dataclasses import dataclass

from model.synth.canvas import Entity

FUNSD_TEMPLATES: tuple[str, ...] = (
    "fax_cover", "memo", "questionnaire", "application", "report", "letter", "checkbox_form",
    "invoice", "purchase_order", "receipt",
)  # fmt: skip
INVOICE_FIELDS: frozenset[str] = frozenset(
    {
        "invoice_number", "date", "due_date", "po_number", "account", "terms", "vendor", "bill_to",
        "ship_to", "subtotal", "tax", "total", "time", "phone",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Schema:
    name: str
    fields: frozenset[str] | None  # None: FUNSD labels
    templates: tuple[str, ...]
    template_weights: tuple[float, ...] | None = None

    def label(self, entity: Entity) -> str:
        if self.fields is None:
            return entity.role
        if entity.field in self.fields and entity.role in ("question", "answer"):
            return f"{entity.field}_key" if entity.role == "question" else str(entity.field)
        return "other"

    def keeps_link(self, head_label: str, tail_label: str) -> bool:
        if self.fields is None:
            return (head_label, tail_label) in (("question", "answer"), ("header", "question"))
        return head_label == f"{tail_label}_key"

    @property
    def labels(self) -> frozenset[str]:
        if self.fields is None:
            return frozenset({"header", "question", "answer", "other"})
        return frozenset({"other"} | set(self.fields) | {f"{f}_key" for f in self.fields})


SCHEMAS: dict[str, Schema] = {
    "funsd": Schema("funsd", None, FUNSD_TEMPLATES, (3, 3, 2, 2, 3, 2, 1.5, 1, 1, 0.5)),
    "invoice": Schema("invoice", INVOICE_FIELDS, ("invoice", "purchase_order", "receipt"), (3, 2, 1)),
}


def get_schema(name: str) -> Schema:
    if name not in SCHEMAS:
        raise ValueError(f"unknown label schema {name!r}; choose one of {sorted(SCHEMAS)}")
    return SCHEMAS[name]
