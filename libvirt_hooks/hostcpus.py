"""The local host's CPU implementations, read from sysfs the way the hook needs them.

Linux publishes each online CPU's MIDR_EL1 and REVIDR_EL1 under
``devices/system/cpu/cpuN/regs/identification/``. A CPU whose files cannot be
read (offline, or missing from the tree) is an error, never skipped: the VM's
vCPUs could later run there. Plain ``os`` calls only: this runs on every start,
restore and incoming migration of a pool VM.
"""

from __future__ import annotations

import os
import stat

from libvirt_hooks import trust
from libvirt_hooks.domain import MAX_CPUS
from qemu_errata.core.cpulist import format_cpus
from qemu_errata.errors import SysfsError

_DIGITS = len(str(MAX_CPUS))
_HEX = b"0123456789abcdefABCDEF"


class HostImplementation:
    """One CPU type of this host (MIDR, REVIDR) and the CPU numbers that have it."""

    __slots__ = ("cpus", "midr", "revidr")

    def __init__(self, midr: int, revidr: int, cpus: tuple[int, ...]) -> None:
        self.midr = midr
        self.revidr = revidr
        self.cpus = cpus

    def __str__(self) -> str:
        return f"CPUs {format_cpus(self.cpus)} MIDR {self.midr:#x} REVIDR {self.revidr:#x}"


def read_host_implementations(sysfs_root: str, cpus: int | None) -> list[HostImplementation]:
    """The implementations of ``cpus`` (a bit mask; None: every CPU of the host), in CPU order.

    The mask is clipped to the CPUs this host has; naming one it lacks is an
    error (libvirt could not pin there either), stated without expanding the mask
    past MAX_CPUS.
    """
    base = os.path.join(sysfs_root, "devices", "system", "cpu")
    host = _all_cpus(base)
    if cpus is None:
        numbers = host
    else:
        host_mask = sum(1 << cpu for cpu in host)
        missing = cpus & ~host_mask
        if missing:
            raise SysfsError(
                f"the VM may run on CPUs {format_cpus(_bits(missing))}, "
                f"which this host does not have (it has CPUs {format_cpus(host)})"
            )
        numbers = _bits(cpus)
    groups: dict[tuple[int, int], list[int]] = {}
    for cpu in numbers:
        identification = os.path.join(base, f"cpu{cpu}", "regs", "identification")
        identity = (
            _read_register(os.path.join(identification, "midr_el1"), cpu),
            _read_register(os.path.join(identification, "revidr_el1"), cpu),
        )
        groups.setdefault(identity, []).append(cpu)
    return [HostImplementation(midr, revidr, tuple(c)) for (midr, revidr), c in groups.items()]


def _bits(mask: int) -> list[int]:
    return [number for number in range(mask.bit_length()) if mask >> number & 1]


def _all_cpus(base: str) -> list[int]:
    try:
        names = os.listdir(base)
    except OSError as error:
        raise SysfsError(f"{base}: cannot list CPUs: {error.strerror}") from None
    numbers = sorted(
        int(name[3:])
        for name in names
        if name.startswith("cpu") and 3 < len(name) <= 3 + _DIGITS and name[3:].isdigit()
    )
    if not numbers:
        raise SysfsError(f"{base}: no cpuN directory")
    if numbers[-1] >= MAX_CPUS:
        raise SysfsError(f"{base}: lists CPU {numbers[-1]}, past the largest Linux has")
    return numbers


def _read_register(path: str, cpu: int) -> int:
    """One register file's value; its content is never quoted (it may not be what it claims)."""
    try:
        # O_NONBLOCK: opening a FIFO planted as a register file must not wait for a writer.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
        descriptor = os.open(path, flags)
    except OSError as error:
        raise SysfsError(
            f"cannot read the identity of CPU {cpu}: {path}: {error.strerror}"
        ) from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise SysfsError(f"{path}: not a regular file")
        reason = trust.problem(status)
        if reason is not None:
            raise SysfsError(f"{path} {reason}")
        text = os.read(descriptor, 64).strip()
    except OSError as error:
        raise SysfsError(
            f"cannot read the identity of CPU {cpu}: {path}: {error.strerror}"
        ) from None
    finally:
        os.close(descriptor)
    digits = text.removeprefix(b"0x")
    if not (0 < len(digits) <= 16 and digits.isascii() and all(c in _HEX for c in digits)):
        raise SysfsError(f"{path}: not a 64-bit register value in hexadecimal")
    return int(digits, 16)
