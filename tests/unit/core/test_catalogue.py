"""The register catalogue data file and what the code derives from it."""

from __future__ import annotations

import re

import pytest

from qemu_errata.core.catalogue import (
    load_catalogue,
    parse_catalogue,
    parse_kernel_version,
    reserved_bits,
)
from qemu_errata.core.registers_table import Kind, Rule
from qemu_errata.errors import CatalogueError

REQUIRED = [
    "MIDR_EL1",
    "REVIDR_EL1",
    "AIDR_EL1",
    "CTR_EL0",
    "CLIDR_EL1",
    "ID_AA64PFR0_EL1",
    "ID_AA64PFR1_EL1",
    "ID_AA64ZFR0_EL1",
    "ID_AA64SMFR0_EL1",
    "ID_AA64DFR0_EL1",
    "ID_AA64DFR1_EL1",
    "ID_AA64ISAR0_EL1",
    "ID_AA64ISAR1_EL1",
    "ID_AA64ISAR2_EL1",
    "ID_AA64ISAR3_EL1",
    "ID_AA64MMFR0_EL1",
    "ID_AA64MMFR1_EL1",
    "ID_AA64MMFR2_EL1",
    "ID_AA64MMFR3_EL1",
    "ID_AA64MMFR4_EL1",
    "ID_PFR0_EL1",
    "ID_PFR1_EL1",
    "ID_PFR2_EL1",
    "ID_DFR0_EL1",
    "ID_DFR1_EL1",
    "ID_AFR0_EL1",
    "ID_MMFR0_EL1",
    "ID_MMFR1_EL1",
    "ID_MMFR2_EL1",
    "ID_MMFR3_EL1",
    "ID_MMFR4_EL1",
    "ID_MMFR5_EL1",
    "ID_ISAR0_EL1",
    "ID_ISAR1_EL1",
    "ID_ISAR2_EL1",
    "ID_ISAR3_EL1",
    "ID_ISAR4_EL1",
    "ID_ISAR5_EL1",
    "ID_ISAR6_EL1",
    "MVFR0_EL1",
    "MVFR1_EL1",
    "MVFR2_EL1",
]


def test_catalogue_describes_every_required_register() -> None:
    catalogue = load_catalogue()
    assert [name for name in REQUIRED if name not in catalogue] == []


# Indices of KVM_ARM_GET_REG_WRITABLE_MASKS' array, from the facts file (section 1).
@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("MIDR_EL1", 0),
        ("REVIDR_EL1", 6),
        ("ID_AA64PFR0_EL1", 32),
        ("ID_AA64ZFR0_EL1", 36),
        ("ID_AA64DFR0_EL1", 40),
        ("ID_AA64ISAR0_EL1", 48),
        ("ID_AA64MMFR0_EL1", 56),
        ("CLIDR_EL1", 65),
        ("AIDR_EL1", 71),
        ("CTR_EL0", 129),
    ],
)
def test_kvm_mask_index_is_derived_from_the_encoding(name: str, index: int) -> None:
    assert load_catalogue()[name].kvm_mask_index == index


# KVM ONE_REG ids, from the facts file (section 2).
@pytest.mark.parametrize(
    ("name", "one_reg_id"),
    [
        ("MIDR_EL1", 0x603000000013C000),
        ("ID_AA64PFR0_EL1", 0x603000000013C020),
        ("ID_AA64ISAR0_EL1", 0x603000000013C030),
        ("CTR_EL0", 0x603000000013D801),
        ("KVM_REG_ARM_PSCI_VERSION", 0x6030000000140000),
        ("KVM_REG_ARM_VENDOR_HYP_BMAP_2", 0x6030000000160003),
    ],
)
def test_one_reg_id(name: str, one_reg_id: int) -> None:
    assert load_catalogue()[name].one_reg_id == one_reg_id


def test_registers_outside_the_id_range_have_no_mask_index() -> None:
    catalogue = load_catalogue()
    assert catalogue["ICC_CTLR_EL1"].kvm_mask_index is None
    assert catalogue["KVM_REG_ARM_PSCI_VERSION"].kvm_mask_index is None


@pytest.mark.parametrize(
    ("qualified", "msb", "lsb", "rule", "signed"),
    [
        ("ID_AA64PFR0_EL1.FP", 19, 16, Rule.LOWER, True),
        ("ID_AA64PFR0_EL1.AdvSIMD", 23, 20, Rule.LOWER, True),
        ("ID_AA64MMFR0_EL1.TGRAN4", 31, 28, Rule.LOWER, True),
        ("ID_AA64MMFR0_EL1.TGRAN64", 27, 24, Rule.LOWER, True),
        ("CTR_EL0.CWG", 27, 24, Rule.HIGHER_OR_ZERO, False),
        ("CTR_EL0.ERG", 23, 20, Rule.HIGHER_OR_ZERO, False),
        ("CTR_EL0.DminLine", 19, 16, Rule.LOWER, False),
        # KVM overrides the host rule of these to lower-safe.
        ("ID_AA64DFR0_EL1.PMUVer", 11, 8, Rule.LOWER, False),
        ("ID_AA64DFR0_EL1.DebugVer", 3, 0, Rule.LOWER, False),
        ("ID_DFR0_EL1.PerfMon", 27, 24, Rule.LOWER, False),
        ("ID_AA64ISAR0_EL1.AES", 7, 4, Rule.LOWER, False),
    ],
)
def test_field_facts(qualified: str, msb: int, lsb: int, rule: Rule, signed: bool) -> None:
    register, name = qualified.split(".")
    field = load_catalogue()[register].field(name)
    assert (field.msb, field.lsb, field.rule, field.signed) == (msb, lsb, rule, signed)


def test_exact_fields_carry_their_safe_value() -> None:
    catalogue = load_catalogue()
    exact = [f for r in catalogue.values() for f in r.fields if f.rule is Rule.EXACT]
    assert exact
    assert all(f.safe is not None for f in exact)
    assert catalogue["CTR_EL0"].field("RES1").safe == 1


def test_value_names_render_with_the_number() -> None:
    aes = load_catalogue()["ID_AA64ISAR0_EL1"].field("AES")
    assert [aes.describe(v) for v in (0, 2, 7)] == ["NI (0x0)", "PMULL (0x2)", "0x7"]


def test_signed_field_reads_0xf_as_the_lowest_value() -> None:
    fp = load_catalogue()["ID_AA64PFR0_EL1"].field("FP")
    assert fp.number(0xF) == -1
    assert fp.number(0x1) == 1
    assert fp.raw(0x1100000010111112) == 1
    assert fp.with_raw(0x1100000010111112, 0xF) == 0x11000000101F1112


def test_reserved_bits_are_those_no_field_describes() -> None:
    catalogue = load_catalogue()
    isar0 = catalogue["ID_AA64ISAR0_EL1"]
    assert reserved_bits(isar0) & isar0.field("AES").mask == 0
    assert reserved_bits(isar0) & 0xF  # ISAR0[3:0] is RES0
    assert reserved_bits(None) == (1 << 64) - 1


def test_identity_and_rule_writable_kinds() -> None:
    catalogue = load_catalogue()
    assert {r.name for r in catalogue.of_kind(Kind.IDENTITY)} >= {
        "MIDR_EL1",
        "REVIDR_EL1",
        "AIDR_EL1",
    }
    assert Kind.FIRMWARE.writable_by_rule
    assert Kind.GIC.writable_by_rule
    assert not Kind.FEATURE.writable_by_rule


HEADER = 'format = "qemu-errata/register-catalogue/2"\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not toml [", "test.toml: not valid TOML"),
        ('format = "other"\n', "test.toml: format is not"),
        (
            HEADER + '[[register]]\nname = "X"\nkind = "feature"\n',
            "test.toml: X: needs an encoding",
        ),
        (
            HEADER + '[[register]]\nname = "X"\nkind = "odd"\nencoding = [3,0,0,1,0]\n',
            "key 'kind': 'odd' is not one of feature, identity",
        ),
        (
            HEADER + '[[register]]\nname = "X"\nkind = "feature"\nencoding = [3,0,0,1,0]\n'
            '[[register.field]]\nname = "A"\nbits = [7, 4]\nrule = "lower"\n'
            '[[register.field]]\nname = "B"\nbits = [5, 0]\nrule = "lower"\n',
            "test.toml: X: bits [5:4] are in both field A and field B",
        ),
        (
            HEADER + '[[register]]\nname = "X"\nkind = "feature"\nencoding = [3,0,0,1,0]\n'
            '[[register.field]]\nname = "A"\nbits = [7, 4]\nrule = "exact"\n',
            "test.toml: X.A: 'safe' belongs with rule 'exact'",
        ),
        (
            HEADER + '[[register]]\nname = "X"\nkind = "feature"\nencoding = [3,0,0,1,0]\n'
            '[[register.field]]\nname = "A"\nbits = [64, 4]\nrule = "lower"\n',
            "does not fit in 6 bits",
        ),
        (
            HEADER + '[[register]]\nname = "X"\nkind = "feature"\nencoding = [3,0,0,1,0]\n'
            "res0 = [[63, 0]]\n"
            '[[register]]\nname = "X"\nkind = "feature"\nencoding = [3,0,0,1,1]\n'
            "res0 = [[63, 0]]\n",
            "key 'name': 'X' again (first in test.toml: register[0] X)",
        ),
    ],
)
def test_inconsistent_catalogue_is_refused_with_the_entry_named(text: str, message: str) -> None:
    with pytest.raises(CatalogueError, match=re.escape(message)):
        parse_catalogue(text, "test.toml")


@pytest.mark.parametrize(
    ("release", "version"),
    [
        ("6.12.57+deb12-arm64", (6, 12)),
        ("7.2.13+deb14-arm64", (7, 2)),
        ("6.1", (6, 1)),
        ("unknown", None),
        ("6", None),
        ("6.rc", None),
    ],
)
def test_kernel_release_parsing(release: str, version: tuple[int, int] | None) -> None:
    assert parse_kernel_version(release) == version
