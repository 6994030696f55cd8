"""The local host's CPU implementations, read from sysfs the way the hook needs them.

Linux publishes each online CPU's MIDR_EL1 and REVIDR_EL1 under
``devices/system/cpu/cpuN/regs/identification/``. A CPU whose files cannot be
read (offline, or missing from the tree) is an error, never skipped: the VM's
vCPUs could later run there. The tree is held to the hook's rule for every input
(``trust``): the way to ``devices/system/cpu`` is checked like a configuration
path, and below it every directory and file is opened relative to its checked
parent, never through a link, and must belong to root or the hook's user and be
writable by no one else. Plain ``os`` calls only: this runs on every start,
restore and incoming migration of a pool VM.
"""

from __future__ import annotations

import os
import stat

from libvirt_hooks import trust
from libvirt_hooks.domain import MAX_CPUS
from qemu_errata.core.cpulist import named_cpus
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
        return f"{named_cpus(self.cpus)} MIDR {self.midr:#x} REVIDR {self.revidr:#x}"


def read_host_implementations(sysfs_root: str, cpus: int | None) -> list[HostImplementation]:
    """The implementations of ``cpus`` (a bit mask; None: every CPU of the host), in CPU order.

    The mask is clipped to the CPUs this host has; naming one it lacks is an
    error (libvirt could not pin there either), stated without expanding the mask
    past MAX_CPUS.
    """
    base = os.path.join(sysfs_root, "devices", "system", "cpu")
    directory = _open_checked(trust.check_path(base, "sysfs CPU directory"), None)
    try:
        return _read_cpus(base, directory, cpus)
    finally:
        os.close(directory)


def _read_cpus(base: str, directory: int, cpus: int | None) -> list[HostImplementation]:
    host = _all_cpus(base, directory)
    if cpus is None:
        numbers = host
    else:
        host_mask = sum(1 << cpu for cpu in host)
        missing = cpus & ~host_mask
        if missing:
            raise SysfsError(
                f"the VM may run on {named_cpus(_bits(missing))}, "
                f"which this host does not have (it has {named_cpus(host)})"
            )
        numbers = _bits(cpus)
    groups: dict[tuple[int, int], list[int]] = {}
    for cpu in numbers:
        identity = _read_identity(base, directory, cpu)
        groups.setdefault(identity, []).append(cpu)
    return [HostImplementation(midr, revidr, tuple(c)) for (midr, revidr), c in groups.items()]


def _read_identity(base: str, cpu_directory: int, cpu: int) -> tuple[int, int]:
    """(MIDR, REVIDR) of one CPU, through directories each checked on its open descriptor."""
    path = base
    midr = os.path.join(base, f"cpu{cpu}", "regs", "identification", "midr_el1")
    opened: list[int] = []
    try:
        directory = cpu_directory
        for name in (f"cpu{cpu}", "regs", "identification"):
            path = os.path.join(path, name)
            directory = _open_checked(path, directory, name, cpu, midr)
            opened.append(directory)
        return (
            _read_register(os.path.join(path, "midr_el1"), directory, cpu),
            _read_register(os.path.join(path, "revidr_el1"), directory, cpu),
        )
    finally:
        for descriptor in opened:
            os.close(descriptor)


def _open_checked(
    path: str,
    parent: int | None,
    name: str | None = None,
    cpu: int | None = None,
    wanted: str | None = None,
) -> int:
    """A descriptor of the directory ``path`` (``name`` in ``parent``), not through a link.

    ``wanted`` is the file the caller is after, named when the directory cannot be opened.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        descriptor = os.open(name or path, flags, dir_fd=parent)
    except OSError as error:
        if cpu is None:
            raise SysfsError(f"{path}: cannot list CPUs: {error.strerror}") from None
        raise SysfsError(
            f"cannot read the identity of CPU {cpu}: {wanted or path}: {error.strerror}"
        ) from None
    reason = trust.problem(os.fstat(descriptor))
    if reason is not None:
        os.close(descriptor)
        raise SysfsError(f"{path} {reason}")
    return descriptor


def _bits(mask: int) -> list[int]:
    return [number for number in range(mask.bit_length()) if mask >> number & 1]


def _all_cpus(base: str, directory: int) -> list[int]:
    try:
        names = os.listdir(directory)
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


def _read_register(path: str, directory: int, cpu: int) -> int:
    """One register file's value; its content is never quoted (it may not be what it claims)."""
    try:
        # O_NONBLOCK: opening a FIFO planted as a register file must not wait for a writer.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
        descriptor = os.open(os.path.basename(path), flags, dir_fd=directory)
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
