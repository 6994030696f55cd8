"""The local host's CPU implementations, read from sysfs the way the hook needs them.

Linux publishes each online CPU's MIDR_EL1 and REVIDR_EL1 under
``devices/system/cpu/cpuN/regs/identification/``. A CPU whose files cannot be
read (offline, or missing from the tree) is an error, never skipped: the VM's
vCPUs could later run there. Plain ``os`` calls only: this runs on every start,
restore and incoming migration of a pool VM.
"""

from __future__ import annotations

import os

from qemu_errata.core.cpulist import format_cpus
from qemu_errata.errors import SysfsError

TYPE_CHECKING = False  # typing itself costs start-up time on the hook's path
if TYPE_CHECKING:
    pass


class HostImplementation:
    """One CPU type of this host (MIDR, REVIDR) and the CPU numbers that have it."""

    __slots__ = ("cpus", "midr", "revidr")

    def __init__(self, midr: int, revidr: int, cpus: tuple[int, ...]) -> None:
        self.midr = midr
        self.revidr = revidr
        self.cpus = cpus

    def __str__(self) -> str:
        return f"CPUs {format_cpus(self.cpus)} MIDR {self.midr:#x} REVIDR {self.revidr:#x}"


def read_host_implementations(
    sysfs_root: str, cpus: frozenset[int] | None
) -> list[HostImplementation]:
    """The implementations of ``cpus`` (None: every CPU of the host), in CPU order."""
    base = os.path.join(sysfs_root, "devices", "system", "cpu")
    numbers = sorted(cpus) if cpus is not None else _all_cpus(base)
    groups: dict[tuple[int, int], list[int]] = {}
    for cpu in numbers:
        identification = os.path.join(base, f"cpu{cpu}", "regs", "identification")
        identity = (
            _read_register(os.path.join(identification, "midr_el1"), cpu),
            _read_register(os.path.join(identification, "revidr_el1"), cpu),
        )
        groups.setdefault(identity, []).append(cpu)
    return [HostImplementation(midr, revidr, tuple(c)) for (midr, revidr), c in groups.items()]


def _all_cpus(base: str) -> list[int]:
    try:
        names = os.listdir(base)
    except OSError as error:
        raise SysfsError(f"{base}: cannot list CPUs: {error.strerror}") from None
    numbers = sorted(
        int(name[3:])
        for name in names
        if name.startswith("cpu") and name[3:].isascii() and name[3:].isdigit()
    )
    if not numbers:
        raise SysfsError(f"{base}: no cpuN directory")
    return numbers


def _read_register(path: str, cpu: int) -> int:
    try:
        with open(path, "rb") as stream:
            text = stream.read(64)
    except OSError as error:
        raise SysfsError(
            f"cannot read the identity of CPU {cpu}: {path}: {error.strerror}"
        ) from None
    try:
        return int(text.strip(), 16)
    except ValueError:
        raise SysfsError(f"{path}: {text[:32]!r} is not a register value") from None
