"""Field rules: combining hosts' values and judging a written value as KVM does."""

from __future__ import annotations

import pytest

from qemu_errata.core.catalogue import Field, load_catalogue
from qemu_errata.core.registers_table import Rule
from qemu_errata.core.rules import REGISTER_CHECKS, accepts, combine, register_refusal, safe_value


def make_field(rule: Rule, signed: bool = False, safe: int | None = None) -> Field:
    return Field("TEST_EL1", "F", 7, 4, rule, signed, safe, {})


LOWER = make_field(Rule.LOWER)
SIGNED = make_field(Rule.LOWER, signed=True)
HIGHER = make_field(Rule.HIGHER)
HIGHER_OR_ZERO = make_field(Rule.HIGHER_OR_ZERO)
EXACT = make_field(Rule.EXACT, safe=0)
FIXED = make_field(Rule.FIXED)


@pytest.mark.parametrize(
    ("field", "values", "expected"),
    [
        (LOWER, [2, 1, 3], 1),
        (SIGNED, [1, 0xF, 0], 0xF),  # 0xF (-1) "not implemented" is the lowest
        (SIGNED, [1, 0], 0),
        (HIGHER, [2, 1, 3], 3),
        (HIGHER_OR_ZERO, [2, 4, 3], 4),
        (HIGHER_OR_ZERO, [2, 0, 3], 0),  # 0 beats everything
        (EXACT, [2, 2], 2),
        (EXACT, [2, 3], 0),  # differing values fall back to the safe value
    ],
)
def test_combine(field: Field, values: list[int], expected: int) -> None:
    assert combine(field, values) == expected


@pytest.mark.parametrize(
    ("field", "requested", "host", "expected"),
    [
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
    ],
)
def test_accepts_writable_field_like_kvm(
    field: Field, requested: int, host: int, expected: bool
) -> None:
    assert accepts(field, requested, host, writable=True) is expected


def test_non_writable_field_takes_only_the_host_value() -> None:
    assert accepts(LOWER, 2, 2, writable=False)
    assert not accepts(LOWER, 1, 2, writable=False)


def test_safe_value_of_equal_values_is_that_value() -> None:
    assert safe_value(EXACT, 3, 3) == 3


ANY = make_field(Rule.ANY)


def test_any_rule_accepts_every_value_and_combines_to_the_highest() -> None:
    assert accepts(ANY, 0, 5, writable=True)
    assert accepts(ANY, 9, 5, writable=True)
    assert not accepts(ANY, 9, 5, writable=False)
    assert combine(ANY, [3, 1, 2]) == 3


def test_values_kvm_refuses_outright_are_refused_unless_they_are_the_hosts() -> None:
    debug = Field("TEST_EL1", "DebugVer", 3, 0, Rule.LOWER, False, None, {}, frozenset(range(6)))
    assert accepts(debug, 6, 8, writable=True)
    assert not accepts(debug, 5, 8, writable=True)  # lower, but below Armv8: KVM says EINVAL
    assert accepts(debug, 5, 5, writable=False)  # the host's own value is kept as it is


def test_clidr_needing_no_pou_clean_is_refused_where_ctr_idc_is_0() -> None:
    catalogue = load_catalogue()
    clidr = catalogue["CLIDR_EL1"]
    idc = catalogue["CTR_EL0"].field("IDC")
    host_clidr = 0x0A200023  # LoUU 1, LoC 2, LoUIS 1: what KVM gives a host without IDC
    no_pou = clidr.field("LoUIS").with_raw(clidr.field("LoUU").with_raw(host_clidr, 0), 0)
    without_idc = {"CLIDR_EL1": host_clidr, "CTR_EL0": idc.with_raw(0x8444C004, 0)}
    with_idc = {"CLIDR_EL1": host_clidr, "CTR_EL0": idc.with_raw(0x8444C004, 1)}
    assert register_refusal(clidr, no_pou, without_idc, catalogue) == (
        "it needs no cache clean to the PoU, and the host's CTR_EL0.IDC is not 1"
    )
    assert register_refusal(clidr, no_pou, with_idc, catalogue) is None
    assert register_refusal(clidr, host_clidr, without_idc, catalogue) is None


def test_every_register_check_the_catalogue_names_exists() -> None:
    named = {r.kvm_check for r in load_catalogue().values() if r.kvm_check}
    assert named == set(REGISTER_CHECKS)


def test_values_newer_kernels_refuse_depend_on_the_hosts_kernel() -> None:
    el1 = load_catalogue()["ID_AA64PFR0_EL1"].field("EL1")
    assert accepts(el1, 0, 1, writable=True, kernel=(6, 12))  # Linux 6.12 takes EL1 = 0
    assert not accepts(el1, 0, 1, writable=True, kernel=(7, 2))  # 7.2 refuses it
    assert not accepts(el1, 0, 1, writable=True, kernel=None)  # unknown: the strictest
