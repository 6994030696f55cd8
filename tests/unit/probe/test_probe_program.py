"""The A64 words the probes run, the register-reading program and GDB packet framing.

Expected instruction words are from LLVM's assembler (llvm-mc -triple=aarch64
-show-encoding), pinned here.
"""

from __future__ import annotations

import pytest

from qemu_errata.core.catalogue import Encoding, load_catalogue
from qemu_errata.probe import a64
from qemu_errata.probe.gdbstub import checksum, frame, unescape
from qemu_errata.probe.sysreg_program import LOAD_ADDRESS, RESULT_SIZE, build_program

MIDR_EL1 = Encoding(3, 0, 0, 0, 0)
ICC_CTLR_EL1 = Encoding(3, 0, 12, 12, 4)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        (a64.mrs(1, MIDR_EL1), 0xD5380001),
        (a64.mrs(0, a64.CNTFRQ_EL0), 0xD53BE000),
        (a64.mrs(1, ICC_CTLR_EL1), 0xD538CC81),
        (a64.mrs(9, a64.ELR_EL1), 0xD5384029),
        (a64.msr(a64.VBAR_EL1, 9), 0xD518C009),
        (a64.msr(a64.ELR_EL1, 9), 0xD5184029),
        (a64.stp_post_index(1, 2, 0, 16), 0xA8810801),
        (a64.adr(0, 4096), 0x10008000),
        (a64.add_immediate(9, 9, 4), 0x91001129),
        (a64.movz(2, 1), 0xD2800022),
        (a64.branch(-4), 0x17FFFFFF),
        (a64.branch(0), 0x14000000),
        (a64.ERET, 0xD69F03E0),
        (a64.ISB, 0xD5033FDF),
        (a64.RET, 0xD65F03C0),
    ],
)
def test_instruction_words(word: int, expected: int) -> None:
    assert word == expected


def test_out_of_range_operands_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bits"):
        a64.movz(0, 0x10000)
    with pytest.raises(ValueError, match="general-purpose"):
        a64.mrs(31, MIDR_EL1)
    with pytest.raises(ValueError, match="op0"):
        a64.mrs(0, Encoding(1, 0, 0, 0, 0))
    with pytest.raises(ValueError, match="multiple of 8"):
        a64.stp_post_index(1, 2, 0, 12)


def test_program_layout_for_the_whole_catalogue() -> None:
    encodings = [r.encoding for r in load_catalogue().values() if r.encoding is not None]
    program = build_program(encodings)
    words = [
        int.from_bytes(program.code[i : i + 4], "little") for i in range(0, len(program.code), 4)
    ]
    stop = (program.stop_address - LOAD_ADDRESS) // 4
    assert words[stop] == a64.branch(0)  # ends in "b ." where the breakpoint goes
    vectors = (program.results_address - LOAD_ADDRESS) - 0x800
    assert vectors % 0x800 == 0
    assert vectors > stop * 4
    assert words[0] == a64.adr(9, vectors)  # VBAR_EL1 <- the vector table
    for offset in (0x000, 0x200):  # synchronous exception, current EL, SP0 and SPx
        assert words[(vectors + offset) // 4] == a64.movz(2, 1)  # flags "undefined"
        assert words[(vectors + offset) // 4 + 4] == a64.ERET
    reads = [w for w in words[:stop] if w & 0xFFF00000 == 0xD5300000]
    assert reads == [a64.mrs(1, e) for e in encodings]  # one mrs per register, in order
    assert len(program.code) == program.results_address - LOAD_ADDRESS
    assert program.results_size == RESULT_SIZE * len(encodings)


def test_program_results_parse_into_values_and_undefined() -> None:
    program = build_program([MIDR_EL1, ICC_CTLR_EL1])
    data = (0x414FD0C1).to_bytes(8, "little") + bytes(8) + bytes(8) + (1).to_bytes(8, "little")
    assert program.parse_results(data) == (0x414FD0C1, None)
    with pytest.raises(ValueError, match="32 bytes"):
        program.parse_results(data[:-1])


def test_gdb_packet_framing() -> None:
    assert checksum(b"g") == 0x67
    assert frame("m40200000,10") == b"$m40200000,10#" + f"{checksum(b'm40200000,10'):02x}".encode()
    assert frame("qSupported") == b"$qSupported#37"
    assert unescape(b"a}\x03b}]") == b"a#b}"
