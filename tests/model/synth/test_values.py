import random

from model.synth.fields import FIELDS
from model.synth.values import Values


def _values(seed: int) -> list[str]:
    values = Values(seed, random.Random(seed))
    return [values.make(field.kind) for field in FIELDS.values()]


def test_values_depend_only_on_the_seed():
    first = _values(11)
    _values(12)
    assert _values(11) == first
    assert _values(12) != first


def test_every_field_kind_gives_text():
    values = Values(0, random.Random(0))
    for kind in {field.kind for field in FIELDS.values()} | set(values.kinds):
        assert values.make(kind).strip(), kind
