"""The sysfs backend: a host's CPU implementations, from any arm64 Linux (also a guest).

Linux publishes each online CPU's MIDR_EL1 and REVIDR_EL1 under
``devices/system/cpu/cpuN/regs/identification``; CPUs with equal values
form one implementation (a big.LITTLE host has several). AIDR_EL1 is not
published, so it is unknown (None). Standard library only.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

from qemu_errata.core.implementations import Implementation
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import InputError, ProbeError
from qemu_errata.files import read_bytes

DEFAULT_SYSFS_ROOT = Path("/sys")
_CPU_DIRECTORY = re.compile(r"cpu(\d+)")
MAX_ATTRIBUTE_BYTES = 4096  # a sysfs attribute is at most a page


def read_implementations(sysfs_root: Path) -> tuple[tuple[Implementation, ...], tuple[int, ...]]:
    """The implementations in order of their first CPU, and the CPUs with no identity
    (offline CPUs publish none)."""
    cpus_directory = sysfs_root / "devices/system/cpu"
    try:
        entries = list(cpus_directory.iterdir())
    except OSError as error:
        raise ProbeError(f"{cpus_directory}: cannot list CPUs: {error.strerror}") from None
    numbers = sorted(
        int(match.group(1)) for entry in entries if (match := _CPU_DIRECTORY.fullmatch(entry.name))
    )
    groups: dict[tuple[int, int], list[int]] = {}
    unidentified = []
    for number in numbers:
        identification = cpus_directory / f"cpu{number}/regs/identification"
        if not (identification / "midr_el1").exists():
            unidentified.append(number)
            continue
        key = (_read_hex(identification / "midr_el1"), _read_hex(identification / "revidr_el1"))
        groups.setdefault(key, []).append(number)
    if not groups:
        raise ProbeError(
            f"{cpus_directory}: no CPU publishes regs/identification/midr_el1 "
            "(not arm64 Linux, or no CPU online)"
        )
    implementations = tuple(
        Implementation(midr, revidr, None, tuple(cpus)) for (midr, revidr), cpus in groups.items()
    )
    return implementations, tuple(unidentified)


def probe_sysfs(sysfs_root: Path = DEFAULT_SYSFS_ROOT, host: str | None = None) -> HostProfile:
    """A profile with the implementations only: no registers, masks or timer frequency."""
    implementations, unidentified = read_implementations(sysfs_root)
    return HostProfile(
        host=host or socket.gethostname(),
        implementations=implementations,
        id_registers={},
        writable_masks=None,
        timer_frequency_hz=None,
        provenance={
            "backend": "sysfs",
            "sysfs_root": str(sysfs_root),
            "cpus_without_identity": list(unidentified),
        },
    )


def _read_hex(path: Path) -> int:
    try:
        text = read_bytes(path, MAX_ATTRIBUTE_BYTES).decode("ascii").strip()
    except UnicodeDecodeError:
        raise ProbeError(f"{path}: cannot read: not ASCII text") from None
    except InputError as error:  # a FIFO or a device planted in the tree: never read it
        raise ProbeError(str(error)) from None
    try:
        value = int(text, 16)
    except ValueError:
        raise ProbeError(f"{path}: {text[:40]!r} is not a hex value") from None
    if not 0 <= value < 1 << 64:
        raise ProbeError(f"{path}: {text} does not fit in 64 bits")
    return value
