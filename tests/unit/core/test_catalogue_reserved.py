"""Declared reserved bits: the table covers every bit once, and a pool requires them equal."""

from __future__ import annotations

import re
from importlib import resources

import pytest
from support.hosts import (
    CORTEX_A76_MIDR,
    NEOVERSE_N1_MIDR,
    NEOVERSE_N1_REGISTERS,
    all_fields_writable,
    profile_json,
)

from qemu_errata.core.catalogue import ReservedBits, load_catalogue, parse_catalogue
from qemu_errata.core.pool import baseline, check
from qemu_errata.core.profile import HostProfile, profile_from_json
from qemu_errata.core.registers_table import Reserved
from qemu_errata.errors import CatalogueError, IncompatiblePoolError

ALL_BITS = (1 << 64) - 1
RES0 = Reserved.RES0
HEADER = 'format = "qemu-errata/register-catalogue/2"\n'


def shipped_text() -> str:
    return resources.files("qemu_errata").joinpath("data/registers.toml").read_text("utf-8")


def register_entry(text: str, register: str) -> tuple[int, int]:
    """Start and end offsets of ``register``'s entry in the table text."""
    start = text.index(f'name = "{register}"\n')
    end = text.find("[[register]]", start)
    return start, len(text) if end < 0 else end


def edited(text: str, register: str, old: str, new: str) -> str:
    """The table with ``old`` replaced by ``new`` once, inside ``register``'s entry only."""
    start, end = register_entry(text, register)
    entry = text[start:end]
    assert entry.count(old) == 1, f"{old!r} is not once in {register}"
    return text[:start] + entry.replace(old, new) + text[end:]


def without_field(text: str, register: str, field: str) -> str:
    start, end = register_entry(text, register)
    block = re.search(
        rf'  \[\[register\.field\]\]\n  name = "{field}"\n(  [^\[\n].*\n|\n)*', text[start:end]
    )
    assert block is not None
    return text[: start + block.start()] + text[start + block.end() :]


def test_the_shipped_table_covers_every_bit_of_every_register_once() -> None:
    catalogue = parse_catalogue(shipped_text(), "registers.toml")
    for register in catalogue.values():
        assert register.field_bits & register.reserved_bits == 0, register.name
        assert register.field_bits | register.reserved_bits == ALL_BITS, register.name


def test_a_field_left_out_is_an_error_naming_register_and_bits() -> None:
    text = without_field(shipped_text(), "ID_AA64ISAR0_EL1", "AES")
    with pytest.raises(CatalogueError) as error:
        parse_catalogue(text, "registers.toml")
    assert str(error.value) == (
        "registers.toml: ID_AA64ISAR0_EL1: bits [7:4] are in no field"
        " and not declared reserved (res0, unreported, state)"
    )


def test_every_gap_is_named() -> None:
    text = without_field(shipped_text(), "ID_AA64DFR0_EL1", "BRPs")
    text = edited(text, "ID_AA64DFR0_EL1", "res0 = [[27, 24], [19, 16]]", "res0 = [[27, 24]]")
    with pytest.raises(
        CatalogueError, match=re.escape("ID_AA64DFR0_EL1: bits [19:12] are in no field")
    ):
        parse_catalogue(text, "registers.toml")


def test_a_reserved_range_over_a_field_is_an_error() -> None:
    text = edited(shipped_text(), "ID_AA64ISAR0_EL1", "res0 = [[3, 0]]", "res0 = [[7, 0]]")
    with pytest.raises(CatalogueError) as error:
        parse_catalogue(text, "registers.toml")
    assert str(error.value) == (
        "registers.toml: ID_AA64ISAR0_EL1: bits [7:4] are in both field AES and res0 [7:0]"
    )


@pytest.mark.parametrize(
    ("declarations", "message"),
    [
        (
            "res0 = [[63, 8]]\nstate = [[9, 0]]\n",
            "X: bits [9:8] are in both res0 [63:8] and state [9:0]",
        ),
        ("res0 = [[63, 8], [8, 0]]\n", "X: bits [8:8] are in both res0 [63:8] and res0 [8:0]"),
        ("res0 = [[64, 0]]\n", "register[0] X, key 'res0[0][0]': 64 does not fit in 6 bits"),
        ("res0 = [[3, 4]]\n", "register[0] X, key 'res0[0]': msb below lsb"),
        ('unreported = ["63:0"]\n', "register[0] X, key 'unreported[0]': not a list"),
        ("res0 = [[63, 33]]\n", "X: bits [32:0] are in no field"),
    ],
)
def test_reserved_declarations_are_checked(declarations: str, message: str) -> None:
    text = (
        HEADER
        + '[[register]]\nname = "X"\nkind = "feature"\nencoding = [3,0,0,1,0]\n'
        + declarations
    )
    with pytest.raises(CatalogueError, match=re.escape(f"test.toml: {message}")):
        parse_catalogue(text, "test.toml")


def ranges(register: str) -> list[tuple[int, int, Reserved]]:
    return [(r.msb, r.lsb, r.reason) for r in load_catalogue()[register].reserved]


@pytest.mark.parametrize(
    ("register", "expected"),
    [
        # Linux arch/arm64/tools/sysreg (and the Arm ARM): every bit is a feature field.
        ("ID_AA64PFR0_EL1", []),
        ("ID_AA64ISAR1_EL1", []),
        ("ID_AA64ISAR0_EL1", [(3, 0, RES0)]),
        ("ID_AA64PFR1_EL1", [(23, 20, RES0)]),
        ("ID_AA64DFR0_EL1", [(27, 24, RES0), (19, 16, RES0)]),
        (
            "ID_AA64ZFR0_EL1",
            [(63, 60, RES0), (51, 48, RES0), (39, 36, RES0), (31, 28, RES0), (15, 8, RES0)],
        ),
        ("ID_AA64MMFR0_EL1", [(55, 48, RES0)]),
        ("ID_ISAR5_EL1", [(63, 32, RES0), (23, 20, RES0)]),
        ("MVFR2_EL1", [(63, 8, RES0)]),
        ("ID_AA64AFR1_EL1", [(63, 0, RES0)]),
        ("ID_AA64MMFR4_EL1", [(63, 40, RES0), (35, 28, RES0), (3, 0, RES0)]),
        # Linux 6.12's layout; later kernels name SH in [14:13] and fields above bit 31.
        ("SMIDR_EL1", [(63, 32, RES0), (14, 12, RES0)]),
        ("MIDR_EL1", [(63, 32, RES0)]),
        # One IMPLEMENTATION DEFINED value: a single field, nothing reserved.
        ("REVIDR_EL1", []),
        ("AIDR_EL1", []),
        # Bit 31 is RES1 but has a cpufeature rule, so it stays a field.
        ("CTR_EL0", [(63, 38, RES0), (30, 30, RES0), (13, 4, RES0)]),
        ("DCZID_EL0", [(63, 5, RES0)]),
        (
            "ICC_CTLR_EL1",
            [
                (63, 20, RES0),
                (19, 18, Reserved.UNREPORTED),
                (17, 16, RES0),
                (7, 7, RES0),
                (6, 6, Reserved.UNREPORTED),
                (5, 2, RES0),
                (1, 0, Reserved.STATE),
            ],
        ),
        ("KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2", [(63, 5, RES0), (4, 4, Reserved.UNREPORTED)]),
        ("KVM_REG_ARM_PSCI_VERSION", [(63, 32, RES0)]),
    ],
)
def test_reserved_ranges_match_the_architecture(
    register: str, expected: list[tuple[int, int, Reserved]]
) -> None:
    assert ranges(register) == expected


def test_reserved_bits_mask() -> None:
    assert ReservedBits(7, 4, RES0).mask == 0xF0
    assert load_catalogue()["ID_AA64ISAR0_EL1"].reserved_bits == 0xF


def host(name: str, midr: str, group: str, register: str, value: int) -> HostProfile:
    """A Neoverse-N1-like host whose ``register`` in profile group ``group`` reads ``value``."""
    registers = dict(NEOVERSE_N1_REGISTERS)
    data = profile_json(name, midr, registers, all_fields_writable(registers))
    data.setdefault(group, {})[register] = f"{value:#x}"
    return profile_from_json(data, f"{name}.json")


@pytest.mark.parametrize(
    ("group", "register", "value", "bit"),
    [
        ("id_registers", "ID_AA64ISAR0_EL1", 0x100010211120, 1 << 0),  # res0
        ("gic_registers", "ICC_CTLR_EL1", 0x8C00, 1 << 1),  # state: EOImode
        ("gic_registers", "ICC_CTLR_EL1", 0x8C00, 1 << 18),  # unreported: RSS
        ("firmware_registers", "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2", 0x1, 1 << 4),  # unreported
    ],
)
def test_reserved_bits_differing_between_hosts_refuse_the_pool(
    group: str, register: str, value: int, bit: int
) -> None:
    reserved = load_catalogue()[register].reserved_bits
    a = host("a", NEOVERSE_N1_MIDR, group, register, value)
    same = host("same", CORTEX_A76_MIDR, group, register, value)
    odd = host("odd", CORTEX_A76_MIDR, group, register, value | bit)
    assert baseline([a, same]) is not None
    message = (
        f"bits {reserved:#x} of {register}, which no field describes, differ and must be equal:"
        f" a={value & reserved:#x}, odd={(value | bit) & reserved:#x}"
    )
    with pytest.raises(IncompatiblePoolError, match=re.escape(message)):
        baseline([a, odd])
    problems = check(baseline([a]), odd).problems
    assert [p.field for p in problems if p.register == register] == [None]
