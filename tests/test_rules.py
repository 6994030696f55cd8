"""Field rules: combining hosts' values and judging a written value as KVM does."""

from __future__ import annotations

import pytest

from qemu_errata.catalogue import Field, Rule
from qemu_errata.rules import accepts, combine, safe_value


def make_field(rule: Rule, signed: bool = False, safe: int | None = None) -> Field:
    return Field("TEST_EL1", "F", 7, 4, rule, signed, safe, {})


LOWER = make_field(Rule.LOWER)
SIGNED = make_field(Rule.LOWER, signed=True)
HIGHER = make_field(Rule.HIGHER)
HIGHER_OR_ZERO = make_field(Rule.HIGHER_OR_ZERO)
EXACT = make_field(Rule.EXACT, safe=0)
FIXED = make_field(Rule.FIXED)


@pytest.mark.parametrize(("field", "values", "expected"), [
    (LOWER, [2, 1, 3], 1),
    (SIGNED, [1, 0xF, 0], 0xF),  # 0xF (-1) "not implemented" is the lowest
    (SIGNED, [1, 0], 0),
    (HIGHER, [2, 1, 3], 3),
    (HIGHER_OR_ZERO, [2, 4, 3], 4),
    (HIGHER_OR_ZERO, [2, 0, 3], 0),  # 0 beats everything
    (EXACT, [2, 2], 2),
    (EXACT, [2, 3], 0),  # differing values fall back to the safe value
])
def test_combine(field: Field, values: list[int], expected: int) -> None:
    assert combine(field, values) == expected


@pytest.mark.parametrize(("field", "requested", "host", "expected"), [
    (LOWER, 1, 2, True),
    (LOWER, 3, 2, False),  # raising a lower-safe field is refused
    (SIGNED, 0xF, 0, True),  # "not implemented" is below 0
    (SIGNED, 0, 0xF, False),
    (HIGHER, 3, 2, True),
    (HIGHER, 1, 2, False),
    (HIGHER_OR_ZERO, 0, 2, True),
    (HIGHER_OR_ZERO, 3, 2, True),
    (HIGHER_OR_ZERO, 1, 2, False),
    (HIGHER_OR_ZERO, 3, 0, False),  # the host's 0 is the only safe value
    (EXACT, 0, 2, True),
    (EXACT, 1, 2, False),
    (FIXED, 2, 2, True),
    (FIXED, 1, 2, False),
])
def test_accepts_writable_field_like_kvm(
    field: Field, requested: int, host: int, expected: bool
) -> None:
    assert accepts(field, requested, host, writable=True) is expected


def test_non_writable_field_takes_only_the_host_value() -> None:
    assert accepts(LOWER, 2, 2, writable=False)
    assert not accepts(LOWER, 1, 2, writable=False)


def test_safe_value_of_equal_values_is_that_value() -> None:
    assert safe_value(EXACT, 3, 3) == 3
