import pytest

from model.synth.schema import get_schema
from tests.model.synth.checks import check_page


def test_invoice_schema_labels_keys_and_values_by_field(invoice_sample):
    for page in invoice_sample:
        check_page(page, "invoice")
        assert page.annotation["meta"]["template"] in ("invoice", "purchase_order", "receipt")
    labels = {e["label"] for page in invoice_sample for e in page.annotation["form"]}
    assert {"total_key", "total", "other"} <= labels
    assert {"header", "question", "answer"}.isdisjoint(labels)
    pairs = {
        (form[a]["label"], form[b]["label"])
        for page in invoice_sample
        for form in [page.annotation["form"]]
        for e in form
        for a, b in e["linking"]
    }
    assert ("total_key", "total") in pairs
    assert all(head == f"{tail}_key" for head, tail in pairs)


def test_funsd_schema_keeps_only_sensible_links():
    schema = get_schema("funsd")
    assert schema.keeps_link("question", "answer") and schema.keeps_link("header", "question")
    assert not schema.keeps_link("answer", "question") and not schema.keeps_link("other", "answer")


def test_unknown_schema_is_refused():
    with pytest.raises(ValueError, match="unknown label schema"):
        get_schema("receipts")
