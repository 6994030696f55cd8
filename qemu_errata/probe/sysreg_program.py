"""A bare-metal program that reads system registers on an emulated vCPU (no I/O).

QEMU's gdbstub does not publish every ID register (MIDR_EL1 and
ID_AA64PFR0_EL1 are missing in 7.2), so the qemu probe has the vCPU itself
read them: for each register the program runs ``mrs`` and stores the value
and an "undefined" flag into RAM. A register the emulated CPU does not
implement traps as UNDEFINED; the program's own exception vector then sets
the flag and skips the instruction, so one program fits every CPU model.

Layout from ``load_address``: code, then (2 KiB aligned) the vector table,
then 16 bytes of results per register. The program ends in ``b .`` at
``stop_address``: a breakpoint there means every register has been read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qemu_errata.core.catalogue import Encoding
from qemu_errata.probe import a64

# -M virt RAM starts at 0x40000000; stay clear of its first 2 MiB (the DTB).
LOAD_ADDRESS = 0x40200000
RESULT_SIZE = 16  # one (value, undefined flag) pair of 64-bit words per register

_RESULTS, _VALUE, _UNDEFINED, _SCRATCH = 0, 1, 2, 9  # x0 .. x9 roles


@dataclass(frozen=True)
class SysregProgram:
    """The program's bytes and the addresses the prober needs."""

    encodings: tuple[Encoding, ...]
    load_address: int
    code: bytes
    stop_address: int
    results_address: int

    @property
    def results_size(self) -> int:
        return RESULT_SIZE * len(self.encodings)

    def parse_results(self, data: bytes) -> tuple[int | None, ...]:
        """Each register's value, in program order; None where the CPU had no such register."""
        if len(data) != self.results_size:
            raise ValueError(f"expected {self.results_size} bytes of results, got {len(data)}")
        values: list[int | None] = []
        for offset in range(0, len(data), RESULT_SIZE):
            value = int.from_bytes(data[offset : offset + 8], "little")
            undefined = int.from_bytes(data[offset + 8 : offset + 16], "little")
            values.append(None if undefined else value)
        return tuple(values)


def build_program(encodings: Sequence[Encoding], load_address: int = LOAD_ADDRESS) -> SysregProgram:
    """The program reading ``encodings`` in order, to be loaded at ``load_address``."""
    if load_address % a64.VECTOR_TABLE_SIZE:
        raise ValueError(f"load address {load_address:#x} is not 2 KiB aligned")
    body: list[int] = []
    for encoding in encodings:
        body += [
            a64.movz(_VALUE, 0),
            a64.movz(_UNDEFINED, 0),
            a64.mrs(_VALUE, encoding),
            a64.stp_post_index(_VALUE, _UNDEFINED, _RESULTS, RESULT_SIZE),
        ]
    prologue_size = 4 * 4
    stop_offset = prologue_size + 4 * len(body)
    vectors_offset = _align_up(stop_offset + 4, a64.VECTOR_TABLE_SIZE)
    results_offset = vectors_offset + a64.VECTOR_TABLE_SIZE
    prologue = [
        a64.adr(_SCRATCH, vectors_offset),
        a64.msr(a64.VBAR_EL1, _SCRATCH),
        a64.ISB,
        a64.adr(_RESULTS, results_offset - 12),  # adr is relative to its own address (12)
    ]
    code = bytearray(a64.little_endian([*prologue, *body, a64.branch(0)]))
    code.extend(bytes(vectors_offset - len(code)))
    code.extend(a64.vector_table(_SKIP_UNDEFINED_INSTRUCTION))
    return SysregProgram(
        encodings=tuple(encodings),
        load_address=load_address,
        code=bytes(code),
        stop_address=load_address + stop_offset,
        results_address=load_address + results_offset,
    )


# Set the undefined flag and return to the instruction after the one that trapped.
_SKIP_UNDEFINED_INSTRUCTION = [
    a64.movz(_UNDEFINED, 1),
    a64.mrs(_SCRATCH, a64.ELR_EL1),
    a64.add_immediate(_SCRATCH, _SCRATCH, 4),
    a64.msr(a64.ELR_EL1, _SCRATCH),
    a64.ERET,
]


def _align_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment
