"""Field values for synthetic forms: names, companies, addresses, dates, amounts, codes, sentences.

Faker (the `train` extra) is imported lazily, once per process, and re-seeded for every page, so a page's
values depend only on its seed. Every choice that is not a Faker call goes through the page's own
`random.Random`.
"""

import datetime
import random
from collections.abc import Callable
from functools import lru_cache
from typing import Any

DATE_FORMATS: tuple[str, ...] = (
    "%m/%d/%y", "%m/%d/%Y", "%B %d, %Y", "%b. %d, %Y", "%d %B %Y", "%d %b %Y", "%Y-%m-%d",
    "%m-%d-%y", "%d.%m.%y", "%b %d %Y", "%B %Y", "%m/%y", "%A, %B %d, %Y",
)  # fmt: skip
BRAND_SUFFIXES = ("Lights", "Kings", "100's", "Menthol", "Ultra", "Filter", "Box", "Special", "Gold", "")
UNITS = ("mm", "mg", "%", "g", "in.", "lbs", "cc", "ml", "kg", "units")
DEPARTMENTS = (
    "Research & Development", "Marketing", "Sales", "Quality Assurance", "Legal", "Accounting",
    "Purchasing", "Product Development", "Public Relations", "Brand Management", "Operations",
)  # fmt: skip


class FakerMissingError(RuntimeError):
    """The faker package (train extra) is not installed."""


@lru_cache(maxsize=1)
def _faker() -> Any:
    try:
        from faker import Faker
    except ImportError as exc:  # the serving install has no faker
        raise FakerMissingError(
            "docextract synth needs the faker package: pip install 'docextract[train]'"
        ) from exc
    return Faker("en_US")


class Values:
    """Value generators for one page; `make(kind)` returns text for a value kind."""

    def __init__(self, seed: int, rng: random.Random) -> None:
        self.fake = _faker()
        self.fake.seed_instance(seed)
        self.rng = rng
        self.kinds: dict[str, Callable[[], str]] = {
            name[3:]: getattr(self, name) for name in dir(self) if name.startswith("_v_")
        }

    def make(self, kind: str) -> str:
        text = self.kinds[kind]()
        return text.upper() if self.rng.random() < 0.12 and "\n" not in text else text

    def _v_name(self) -> str:
        fake, rng = self.fake, self.rng
        if rng.random() < 0.35:
            return f"{fake.first_name()[0]}. {fake.last_name()}"
        if rng.random() < 0.15:
            return f"{fake.first_name()[0]}. {fake.first_name()[0]}. {fake.last_name()}"
        return fake.name() if rng.random() < 0.3 else f"{fake.first_name()} {fake.last_name()}"

    def _v_names(self) -> str:
        return ", ".join(self._v_name() for _ in range(self.rng.randint(2, 4)))

    def _v_company(self) -> str:
        return self.fake.company()

    def _v_address(self) -> str:
        return self.fake.address().replace(" Apt.", "\nApt.")

    def _v_street(self) -> str:
        return self.fake.street_address()

    def _v_city(self) -> str:
        return f"{self.fake.city()}, {self.fake.state_abbr()} {self.fake.zipcode()}"

    def _v_date(self) -> str:
        day = self.fake.date_between_dates(datetime.date(1978, 1, 1), datetime.date(2002, 12, 31))
        text = day.strftime(self.rng.choice(DATE_FORMATS))
        return text.lstrip("0") if self.rng.random() < 0.5 else text

    def _v_time(self) -> str:
        return self.fake.time(pattern=self.rng.choice(("%I:%M %p", "%H:%M", "%I:%M")))

    def _v_phone(self) -> str:
        a, b, c = self.rng.randint(201, 989), self.rng.randint(200, 999), self.rng.randint(0, 9999)
        return self.rng.choice((f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}/{b}-{c:04d}", f"{b}-{c:04d}"))

    def _v_amount(self) -> str:
        value = round(self.rng.lognormvariate(6, 2), 2)
        text = f"{value:,.2f}"
        return self.rng.choice((f"${text}", text, f"$ {text}", f"{text}"))

    def _v_number(self) -> str:
        return str(self.rng.choice((self.rng.randint(0, 99), self.rng.randint(100, 99999))))

    def _v_pages(self) -> str:
        n = self.rng.randint(1, 12)
        return self.rng.choice((str(n), f"{n} (including cover)", f"{n} + cover", f"{n:02d}"))

    def _v_measure(self) -> str:
        value = round(self.rng.uniform(0, 120), self.rng.choice((0, 1, 2)))
        return f"{value} {self.rng.choice(UNITS)}" if self.rng.random() < 0.6 else str(value)

    def _v_code(self) -> str:
        return self.fake.bothify(
            self.rng.choice(("####", "##-####", "?-####", "??-###-#", "#####-?", "#-##"))
        )

    def _v_brand(self) -> str:
        return f"{self.fake.last_name()} {self.rng.choice(BRAND_SUFFIXES)}".strip()

    def _v_product(self) -> str:
        return f"{self.fake.word().capitalize()} {self.fake.word()} {self.rng.choice(UNITS)}"

    def _v_job(self) -> str:
        return self.fake.job().split(",")[0]

    def _v_department(self) -> str:
        return self.rng.choice(DEPARTMENTS)

    def _v_sentence(self) -> str:
        return self.fake.sentence(nb_words=self.rng.randint(3, 9))

    def _v_paragraph(self) -> str:
        return self.fake.paragraph(nb_sentences=self.rng.randint(2, 5))

    def _v_words(self) -> str:
        return " ".join(self.fake.words(self.rng.randint(1, 4))).capitalize()

    def _v_yesno(self) -> str:
        return self.rng.choice(("Yes", "No", "YES", "NO", "N/A", "X"))

    def _v_email(self) -> str:
        return self.fake.company_email()

    def _v_percent(self) -> str:
        return f"{self.rng.uniform(0, 100):.{self.rng.choice((0, 1))}f}%"
