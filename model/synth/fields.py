"""Key vocabulary of synthetic forms, close to FUNSD's: each field has key spellings and a value kind.

A field's name is also its tag in user label schemas (`invoice`: `date_key` -> `date`, ...).
"""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    keys: tuple[str, ...]
    kind: str


def _f(name: str, kind: str, *keys: str) -> Field:
    return Field(name, keys, kind)


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        _f("date", "date", "DATE", "Date", "DATE SENT", "Date of Request", "DATED", "DATE RECEIVED"),
        _f("to", "name", "TO", "To", "ATTENTION", "ATTN", "Attn.", "FOR"),
        _f("from", "name", "FROM", "From", "SENDER", "ORIGINATOR"),
        _f("cc", "names", "CC", "cc", "C.C.", "COPIES TO", "Distribution"),
        _f("subject", "sentence", "SUBJECT", "Subject", "RE", "Re", "TOPIC", "REGARDING"),
        _f("company", "company", "COMPANY", "Company", "FIRM", "AGENCY", "CLIENT", "ORGANIZATION"),
        _f("fax", "phone", "FAX NO.", "FAX #", "Fax Number", "FAX", "TELECOPIER NO."),
        _f("phone", "phone", "PHONE", "Phone No.", "TELEPHONE", "TEL", "PHONE #", "Tel. No."),
        _f(
            "pages", "pages", "PAGES", "No. of Pages", "NUMBER OF PAGES", "TOTAL PAGES", "PAGES (incl. cover)"
        ),
        _f("brand", "brand", "BRAND", "Brand", "BRAND NAME", "Brand(s)"),
        _f("project", "code", "PROJECT NO.", "PROJECT #", "Project", "PROJECT", "JOB NO."),
        _f("approved_by", "name", "APPROVED BY", "Approved by", "APPROVAL", "AUTHORIZED BY"),
        _f("prepared_by", "name", "PREPARED BY", "Prepared by", "SUBMITTED BY", "REQUESTED BY"),
        _f("comments", "paragraph", "COMMENTS", "Comments", "REMARKS", "NOTES", "MESSAGE"),
        _f("description", "sentence", "DESCRIPTION", "Description", "PURPOSE", "OBJECTIVE"),
        _f("address", "address", "ADDRESS", "Address", "MAILING ADDRESS", "LOCATION"),
        _f("city", "city", "CITY/STATE/ZIP", "City", "CITY, STATE"),
        _f("name", "name", "NAME", "Name", "CONTACT", "CONTACT PERSON", "EMPLOYEE"),
        _f("position", "job", "POSITION", "TITLE", "Title", "OCCUPATION"),
        _f("department", "department", "DEPARTMENT", "DEPT.", "Division", "AFFILIATION"),
        _f("account", "code", "ACCOUNT NO.", "Account #", "ACCT. NO.", "ACCOUNT NAME", "CUSTOMER NO."),
        _f("budget", "amount", "BUDGET", "TOTAL AREA BUDGET", "COST", "ESTIMATED COST", "NEW BALANCE"),
        _f("supplier", "company", "SUPPLIER", "Supplier", "VENDOR", "MANUFACTURER"),
        _f("sample", "code", "SAMPLE", "SAMPLE NO.", "CODE", "Lot No.", "TEST NO."),
        _f("weight", "measure", "WEIGHT", "CIRCUMFERENCE", "LENGTH", "PRESSURE DROP", "MOISTURE"),
        _f("time", "time", "TIME", "Time", "TIME SENT"),
        _f("signature", "name", "SIGNATURE", "Signature", "SIGNED"),
        _f("invoice_number", "code", "INVOICE NO.", "Invoice #", "INVOICE NUMBER", "Invoice No"),
        _f("due_date", "date", "DUE DATE", "Payment Due", "DATE DUE", "TERMS DUE"),
        _f("po_number", "code", "P.O. NO.", "PURCHASE ORDER NO.", "PO #", "ORDER NO."),
        _f("vendor", "company", "VENDOR", "SOLD BY", "REMIT TO", "SUPPLIER"),
        _f("bill_to", "address", "BILL TO", "Bill To", "SOLD TO", "CUSTOMER"),
        _f("ship_to", "address", "SHIP TO", "Ship To", "DELIVER TO"),
        _f("subtotal", "amount", "SUBTOTAL", "Sub-total", "NET AMOUNT", "MERCHANDISE"),
        _f("tax", "amount", "TAX", "Sales Tax", "VAT", "TAX (6%)"),
        _f("total", "amount", "TOTAL", "Total", "AMOUNT DUE", "TOTAL DUE", "BALANCE DUE", "GRAND TOTAL"),
        _f("terms", "words", "TERMS", "Terms", "PAYMENT TERMS", "SHIP VIA", "F.O.B."),
    )
}

# Field groups used by the templates.
MEMO_FIELDS = ("to", "from", "cc", "date", "subject")
FAX_FIELDS = ("to", "company", "fax", "phone", "from", "date", "pages", "subject", "time")
APPLICATION_FIELDS = (
    "name", "address", "city", "phone", "position", "department", "date", "company", "signature",
)  # fmt: skip
REPORT_FIELDS = ("project", "brand", "date", "prepared_by", "approved_by", "sample", "budget", "supplier")
INVOICE_HEAD_FIELDS = ("invoice_number", "date", "due_date", "po_number", "account", "terms")
TOTAL_FIELDS = ("subtotal", "tax", "total")
GENERIC_FIELDS = tuple(FIELDS)

SECTION_TITLES = (
    "GENERAL INFORMATION", "PROJECT DESCRIPTION", "APPROVALS", "SHIPPING INFORMATION", "COMMENTS",
    "PHYSICAL CHARACTERISTICS", "BUDGET", "RESULTS", "PERSONAL DATA", "EMPLOYMENT HISTORY",
    "FOR OFFICE USE ONLY", "DISTRIBUTION", "TEST CONDITIONS", "PRODUCT INFORMATION", "CONTACT INFORMATION",
    "SUMMARY", "ACTION REQUIRED",
)  # fmt: skip
QUESTIONS = (
    "Have you contacted your Manager/Supervisor?", "Do you smoke?", "Is this a new product?",
    "Was the sample received in good condition?", "Would you buy this product again?",
    "Have you used this brand before?", "Is a follow-up required?", "Was the test completed?",
    "Did the panel prefer the new blend?", "Overall, how would you rate the taste?",
)  # fmt: skip
OPTIONS = (
    ("Yes", "No"), ("YES", "NO"), ("Male", "Female"), ("Excellent", "Good", "Fair", "Poor"),
    ("Daily", "Weekly", "Monthly", "Never"), ("Agree", "Neutral", "Disagree"), ("Approved", "Rejected"),
)  # fmt: skip


def key_text(rng: random.Random, field: Field, upper: bool | None = None) -> str:
    """One spelling of the field's key: with or without a colon (or ' :' / '#'), sometimes upper case."""
    text = rng.choice(field.keys)
    if upper or (upper is None and rng.random() < 0.3):
        text = text.upper()
    suffix = rng.choices((":", "", " :", "."), weights=(6, 4, 1, 0.5))[0]
    return text if text.endswith((":", ".", "#")) and suffix else text + suffix
