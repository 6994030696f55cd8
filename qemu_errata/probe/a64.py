"""The few A64 instructions the probes run, encoded as 32-bit words (no I/O).

The kvm backend runs ``mrs x0, cntfrq_el0; ret`` in its own process; the
qemu backend has the emulated vCPU run a program of ``mrs``/``stp``;
``kvm-validate --run`` has a KVM guest run ``mrs``/``str`` (mmio_program). All are
assembled here rather than shipped as binaries, so every word is reviewable
and pinned by unit tests.
"""

from __future__ import annotations

from collections.abc import Sequence

from qemu_errata.core.catalogue import Encoding

# The generic timer frequency register: readable at EL0, not in the register
# catalogue (it is a host property, the profile's timer_frequency_hz).
CNTFRQ_EL0 = Encoding(3, 3, 14, 0, 0)
VBAR_EL1 = Encoding(3, 0, 12, 0, 0)
ELR_EL1 = Encoding(3, 0, 4, 0, 1)
ESR_EL1 = Encoding(3, 0, 5, 2, 0)

ISB = 0xD5033FDF
NOP = 0xD503201F
ERET = 0xD69F03E0
RET = 0xD65F03C0  # ret x30

_REGISTER_MAX = 30  # x0..x30; 31 is the zero register or SP depending on the instruction

VECTOR_TABLE_SIZE = 0x800  # also its alignment (VBAR_EL1 bits [10:0] are RES0)
_VECTOR_SIZE = 0x80
# Synchronous exceptions from the current EL, on SP_EL0 and on SP_ELx: an
# UNDEFINED mrs lands in one of these, depending on the SP the CPU resets to.
_SYNC_VECTOR_OFFSETS = (0x000, 0x200)


def _check_register(number: int) -> int:
    if not 0 <= number <= _REGISTER_MAX:
        raise ValueError(f"x{number} is not a general-purpose register")
    return number


def _system_register(base: int, encoding: Encoding, rt: int) -> int:
    if encoding.op0 not in (2, 3):
        raise ValueError(f"{encoding} is not a system register (op0 must be 2 or 3)")
    return (
        base
        | (encoding.op0 - 2) << 19
        | encoding.op1 << 16
        | encoding.crn << 12
        | encoding.crm << 8
        | encoding.op2 << 5
        | _check_register(rt)
    )


def mrs(rt: int, encoding: Encoding) -> int:
    """``mrs x<rt>, <encoding>``: read a system register."""
    return _system_register(0xD5300000, encoding, rt)


def msr(encoding: Encoding, rt: int) -> int:
    """``msr <encoding>, x<rt>``: write a system register."""
    return _system_register(0xD5100000, encoding, rt)


def movz(rd: int, immediate: int) -> int:
    """``movz x<rd>, #immediate`` (16 bits, no shift)."""
    if not 0 <= immediate <= 0xFFFF:
        raise ValueError(f"{immediate:#x} does not fit in 16 bits")
    return 0xD2800000 | immediate << 5 | _check_register(rd)


def add_immediate(rd: int, rn: int, immediate: int) -> int:
    """``add x<rd>, x<rn>, #immediate`` (12 bits, no shift)."""
    if not 0 <= immediate <= 0xFFF:
        raise ValueError(f"{immediate:#x} does not fit in 12 bits")
    return 0x91000000 | immediate << 10 | _check_register(rn) << 5 | _check_register(rd)


def stp_post_index(rt1: int, rt2: int, rn: int, offset: int) -> int:
    """``stp x<rt1>, x<rt2>, [x<rn>], #offset``: store a pair, then add offset to x<rn>."""
    if offset % 8 or not -512 <= offset <= 504:
        raise ValueError(f"{offset} is not a multiple of 8 in -512..504")
    return (
        0xA8800000
        | (offset // 8 & 0x7F) << 15
        | _check_register(rt2) << 10
        | _check_register(rn) << 5
        | _check_register(rt1)
    )


def str_unsigned_offset(rt: int, rn: int, offset: int) -> int:
    """``str x<rt>, [x<rn>, #offset]``: one store without writeback, so that a
    stage-2 fault on it carries a valid syndrome (ISV) a hypervisor can emulate."""
    if offset % 8 or not 0 <= offset <= 0x7FF8:
        raise ValueError(f"{offset} is not a multiple of 8 in 0..32760")
    return 0xF9000000 | offset // 8 << 10 | _check_register(rn) << 5 | _check_register(rt)


def adr(rd: int, offset: int) -> int:
    """``adr x<rd>, .+offset``: a PC-relative address within 1 MiB."""
    if not -(1 << 20) <= offset < 1 << 20:
        raise ValueError(f"{offset} is out of adr's 1 MiB range")
    immediate = offset & 0x1FFFFF
    return 0x10000000 | (immediate & 3) << 29 | (immediate >> 2) << 5 | _check_register(rd)


def branch(offset: int) -> int:
    """``b .+offset``."""
    if offset % 4 or not -(1 << 27) <= offset < 1 << 27:
        raise ValueError(f"{offset} is not a word offset within 128 MiB")
    return 0x14000000 | (offset // 4 & 0x3FFFFFF)


def ldr_literal(rt: int, offset: int) -> int:
    """``ldr x<rt>, .+offset``: load the u64 at a PC-relative address within 1 MiB."""
    if offset % 4 or not -(1 << 20) <= offset < 1 << 20:
        raise ValueError(f"{offset} is not a word offset within 1 MiB")
    return 0x58000000 | (offset // 4 & 0x7FFFF) << 5 | _check_register(rt)


def br(rn: int) -> int:
    """``br x<rn>``: jump to the address in x<rn>."""
    return 0xD61F0000 | _check_register(rn) << 5


def little_endian(words: Sequence[int]) -> bytes:
    """The words as the bytes an arm64 CPU fetches."""
    return b"".join(word.to_bytes(4, "little") for word in words)


def vector_table(handler: Sequence[int]) -> bytes:
    """An exception vector table whose synchronous current-EL vectors run ``handler``."""
    code = little_endian(handler)
    if len(code) > _VECTOR_SIZE:
        raise ValueError(f"a {len(code)}-byte handler does not fit in a {_VECTOR_SIZE}-byte vector")
    table = bytearray(VECTOR_TABLE_SIZE)
    for offset in _SYNC_VECTOR_OFFSETS:
        table[offset : offset + len(code)] = code
    return bytes(table)
