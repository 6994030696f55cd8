"""The qemu backend's pure helpers: gdbstub register names, the reading's consistency."""

from __future__ import annotations

import pytest

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.errors import ProbeError
from qemu_errata.probe.qemu import (
    QemuReading,
    gdb_name_of,
    gdb_register_numbers,
    profile_from_reading,
    registers_to_read,
)

SYSTEM_REGISTERS_XML = (
    '<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd">'
    '<feature name="org.qemu.gdb.arm.sys.regs">'
    '<reg name="ID_PFR0" bitsize="64" regnum="70" group="cp_regs"/>'
    '<reg name="ID_AA64ISAR0_EL1" bitsize="64" regnum="71" group="cp_regs"/>'
    '<reg name="ID_AA64MMFR3_EL1_RESERVED" bitsize="64" regnum="72" group="cp_regs"/>'
    '<reg name="CLIDR" bitsize="64" regnum="73" group="cp_regs"/>'
    "</feature>"
)


def test_gdbstub_register_names_map_to_the_catalogue() -> None:
    published = gdb_register_numbers(SYSTEM_REGISTERS_XML)
    assert published == {
        "ID_PFR0": 70,
        "ID_AA64ISAR0_EL1": 71,
        "ID_AA64MMFR3_EL1_RESERVED": 72,
        "CLIDR": 73,
    }
    assert gdb_name_of("ID_AA64ISAR0_EL1", published) == "ID_AA64ISAR0_EL1"
    assert gdb_name_of("ID_PFR0_EL1", published) == "ID_PFR0"  # QEMU's AArch32 name
    assert gdb_name_of("CLIDR_EL1", published) == "CLIDR"
    assert gdb_name_of("ID_AA64MMFR3_EL1", published) == "ID_AA64MMFR3_EL1_RESERVED"
    assert gdb_name_of("MIDR_EL1", published) is None  # not published by QEMU 7.2


def test_two_midr_readings_must_agree() -> None:
    registers = registers_to_read(load_catalogue())
    values: dict[str, int | None] = {r.name: 0 for r in registers}
    values["MIDR_EL1"] = 0x414FD0C1
    reading = QemuReading("7.2.0", 0x414FD0B1, values, ())
    with pytest.raises(ProbeError, match="MIDR_EL1 0x414fd0c1, its midr property is 0x414fd0b1"):
        profile_from_reading("neoverse-n1", "h", registers, reading)
