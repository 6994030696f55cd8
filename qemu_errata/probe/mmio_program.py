"""A KVM guest program that reads ID registers with MRS and reports them by MMIO (no I/O).

``kvm-validate --run`` loads it into a guest whose registers it has just
written: for each register the guest runs ``mrs x0, <register>`` and stores
x0 to its own MMIO address, outside guest RAM, so that each store is a
KVM_EXIT_MMIO carrying the value the guest saw. A final store to the "done"
address ends the run. An MRS that is UNDEFINED in the guest (GMID_EL1
without MTE) takes an exception to the program's vector, which reports
ESR_EL1 and the faulting address, then resumes at the next register: one
program fits every model. ``GuestReport`` turns the stores, in the order the
guest made them, into what the guest read.

Guest physical layout: RAM (one 64 KiB slot, aligned for every page size)
at ``RAM_BASE`` holds the vector table, then the code from ``entry_address``;
the MMIO window at ``MMIO_BASE``, below RAM, is not backed by anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from qemu_errata.core.catalogue import Encoding
from qemu_errata.probe import a64

RAM_BASE = 0x10000
RAM_SIZE = 0x10000
MMIO_BASE = 0x8000  # movz reaches it in one instruction
# Offsets of the MMIO window: the end, an exception's syndrome and address, then one
# u64 per register in program order.
DONE, SYNDROME, FAULT_ADDRESS, FIRST_REGISTER = 0, 8, 16, 24

_VALUE, _MMIO = 0, 1  # x0, x1 roles
_SCRATCH = 2
_WORDS_PER_REGISTER = 2  # mrs, str


class GuestError(Exception):
    """The guest did something the program does not do: the run cannot be read."""


@dataclass(frozen=True)
class GuestRead:
    """What the guest got from one MRS: a value, or an exception (value None)."""

    value: int | None
    syndrome: int = 0  # ESR_EL1 of the exception

    def describe(self) -> str:
        if self.value is None:
            return f"UNDEFINED (ESR_EL1 {self.syndrome:#x})"
        return f"{self.value:#x}"


@dataclass(frozen=True)
class MmioProgram:
    """The program's bytes (loaded at RAM_BASE) and where it starts."""

    encodings: tuple[Encoding, ...]
    code: bytes
    entry_address: int

    @property
    def max_stores(self) -> int:
        """Stores of a run that reads every register, each one faulting at worst, then ends."""
        return 2 * len(self.encodings) + 1

    def register_reported_at(self, address: int) -> int | None:
        """The index of the register the guest stores at MMIO ``address``."""
        index, remainder = divmod(address - MMIO_BASE - FIRST_REGISTER, 8)
        return index if not remainder and 0 <= index < len(self.encodings) else None

    def register_read_at(self, pc: int) -> int | None:
        """The index of the register whose MRS is at guest address ``pc``."""
        index, remainder = divmod(
            pc - self.entry_address - 4 * len(_PROLOGUE), 4 * _WORDS_PER_REGISTER
        )
        return index if not remainder and 0 <= index < len(self.encodings) else None


def build_program(encodings: Sequence[Encoding]) -> MmioProgram:
    """The program reading ``encodings`` in order, then waiting in a loop."""
    return _assemble(encodings, RAM_BASE, [a64.branch(0)])


def build_boot_program(
    encodings: Sequence[Encoding], base: int, kernel_entry: int, device_tree: int
) -> MmioProgram:
    """The program reading ``encodings`` in order, loaded at ``base``, that then boots an arm64
    Linux Image as booting.rst asks: x0 = the device tree's address, x1-x3 = 0, MMU off."""
    # The two literals follow these six words: ldr x0 reads the first 24 bytes on, ldr x4
    # (the fifth word) the second, 16 bytes on.
    boot = [
        a64.ldr_literal(_VALUE, 24),
        a64.movz(1, 0),
        a64.movz(2, 0),
        a64.movz(3, 0),
        a64.ldr_literal(4, 16),
        a64.br(4),
    ]
    literals = device_tree.to_bytes(8, "little") + kernel_entry.to_bytes(8, "little")
    return _assemble(encodings, base, boot, literals)


def _assemble(
    encodings: Sequence[Encoding],
    base: int,
    ending: Sequence[int],
    literals: bytes = b"",
) -> MmioProgram:
    """Vector table, prologue, one MRS and store per register, the store ending the reads,
    then ``ending`` and its ``literals``, 8-byte aligned (with the MMU off, as here, an
    unaligned load faults)."""
    body: list[int] = []
    for index, encoding in enumerate(encodings):
        body += [
            a64.mrs(_VALUE, encoding),
            a64.str_unsigned_offset(_VALUE, _MMIO, FIRST_REGISTER + 8 * index),
        ]
    code = bytearray(a64.vector_table(_REPORT_AND_SKIP))
    code += a64.little_endian([*_PROLOGUE, *body, a64.str_unsigned_offset(_VALUE, _MMIO, DONE)])
    if literals and len(code) % 8:
        code += a64.little_endian([a64.NOP])
    code += a64.little_endian(ending) + literals
    if len(code) > RAM_SIZE:
        raise ValueError(f"{len(encodings)} registers do not fit in {RAM_SIZE:#x} bytes")
    return MmioProgram(tuple(encodings), bytes(code), base + a64.VECTOR_TABLE_SIZE)


# x1 <- the MMIO window; VBAR_EL1 <- the vector table, just below the entry address
# (adr is relative to its own address, the second word).
_PROLOGUE = [
    a64.movz(_MMIO, MMIO_BASE),
    a64.adr(_SCRATCH, -a64.VECTOR_TABLE_SIZE - 4),
    a64.msr(a64.VBAR_EL1, _SCRATCH),
    a64.ISB,
]


# Report the exception (syndrome, then address), then resume after the register's MRS
# and its store, at the next register.
_REPORT_AND_SKIP = [
    a64.mrs(_VALUE, a64.ESR_EL1),
    a64.str_unsigned_offset(_VALUE, _MMIO, SYNDROME),
    a64.mrs(_VALUE, a64.ELR_EL1),
    a64.str_unsigned_offset(_VALUE, _MMIO, FAULT_ADDRESS),
    a64.add_immediate(_VALUE, _VALUE, 4 * _WORDS_PER_REGISTER),
    a64.msr(a64.ELR_EL1, _VALUE),
    a64.ERET,
]


@dataclass
class GuestReport:
    """What the guest read, built from its MMIO stores in order."""

    program: MmioProgram
    reads: dict[int, GuestRead] = field(default_factory=dict)  # register index -> read
    done: bool = False
    _syndrome: int | None = None

    def store(self, address: int, value: int) -> None:
        """Take one store of the guest; GuestError when the program would not make it."""
        if self.done:
            raise GuestError(f"a store to {address:#x} after the end")
        if address == MMIO_BASE + DONE:
            self.done = True
        elif address == MMIO_BASE + SYNDROME:
            self._syndrome = value
        elif address == MMIO_BASE + FAULT_ADDRESS:
            self._fault(value)
        elif (index := self.program.register_reported_at(address)) is not None:
            self.reads[index] = GuestRead(value)
        else:
            raise GuestError(f"a store to {address:#x}, outside the program's MMIO window")

    def _fault(self, pc: int) -> None:
        syndrome, self._syndrome = self._syndrome, None
        index = self.program.register_read_at(pc)
        if syndrome is None or index is None:
            shown = "?" if syndrome is None else f"{syndrome:#x}"
            raise GuestError(f"an exception at {pc:#x} (ESR_EL1 {shown}), not at an MRS")
        self.reads[index] = GuestRead(None, syndrome)
