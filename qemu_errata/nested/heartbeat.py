"""The fleet's guest: a Debian kernel whose /init prints a heartbeat with what the CPU says.

/init is our own program (``data/heartbeat.S``, assembled by
``scripts/assemble-heartbeat`` into ``data/heartbeat.bin``), wrapped here in
a one-segment static ELF: every 200 ms it prints one line with a counter,
MIDR_EL1 (Linux emulates the EL0 read with a fresh read of the register, so
after a migration it is the destination's) and six ID registers (the guest
kernel's sanitised view, fixed at its boot). The counter shows the guest
kept running across a migration: it goes on from where it was, with no reset.
Before counting it prints the guest kernel's log record naming the PSCI
version its firmware (KVM) offered (read from /dev/kmsg, as the kernel boots
``quiet``: a full boot log through the emulated UART costs a minute here).
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from qemu_errata.cpio import CpioWriter

PROGRAM = Path(__file__).parent.parent / "data" / "heartbeat.bin"
BEAT_PREFIX = "qemu-errata-heartbeat "
BEAT_SECONDS = 0.2
_LOAD_ADDRESS = 0x400000
_ELF_HEADER_BYTES = 64
_PROGRAM_HEADER_BYTES = 56
_EM_AARCH64 = 183
_PT_LOAD = 1
_PF_RWX = 7
_BEAT = re.compile(
    r"qemu-errata-heartbeat (?P<count>[0-9a-f]{16})(?P<registers>( \w+=0x[0-9a-f]+)+)"
)
_REGISTER = re.compile(r"(\w+)=(0x[0-9a-f]+)")
_PSCI = re.compile(r"psci: PSCIv(\d+\.\d+) detected in firmware")


def program_elf(code: bytes) -> bytes:
    """``code`` as a static arm64 ELF executable: one loadable, writable segment."""
    entry = _LOAD_ADDRESS + _ELF_HEADER_BYTES + _PROGRAM_HEADER_BYTES
    size = _ELF_HEADER_BYTES + _PROGRAM_HEADER_BYTES + len(code)
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)  # 64-bit, little-endian, ELF version 1
    header = struct.pack(
        "<16sHHIQQQIHHHHHH",
        ident,
        2,  # ET_EXEC
        _EM_AARCH64,
        1,
        entry,
        _ELF_HEADER_BYTES,
        0,
        0,
        _ELF_HEADER_BYTES,
        _PROGRAM_HEADER_BYTES,
        1,
        0,
        0,
        0,
    )
    segment = struct.pack(
        "<IIQQQQQQ", _PT_LOAD, _PF_RWX, 0, _LOAD_ADDRESS, _LOAD_ADDRESS, size, size, 0x10000
    )
    return header + segment + code


def guest_initramfs() -> bytes:
    """The guest's initramfs: /dev/console, /dev/kmsg and the heartbeat program as /init."""
    stream = io.BytesIO()
    archive = CpioWriter(stream)
    archive.directory("dev")
    archive.character_device("dev/console", 5, 1)
    archive.character_device("dev/kmsg", 1, 11)
    archive.file("init", program_elf(PROGRAM.read_bytes()), 0o755)
    archive.close()
    return stream.getvalue()


@dataclass(frozen=True)
class Beat:
    """One heartbeat line: its counter and the register values it printed."""

    count: int
    registers: dict[str, str]


def parse_beat(line: str) -> Beat | None:
    """The heartbeat in ``line``, or None when it is another line (or a torn one)."""
    match = _BEAT.search(line)
    if match is None:
        return None
    registers = {
        name: f"{int(value, 16):#x}" for name, value in _REGISTER.findall(match["registers"])
    }
    return Beat(int(match["count"], 16), registers)


def boot_facts(console: str) -> dict[str, str | None]:
    """What the guest kernel said at boot: the PSCI version its firmware (KVM) offered."""
    psci = _PSCI.search(console)
    return {"psci_version": None if psci is None else psci[1]}
