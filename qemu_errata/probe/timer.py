"""The host's generic timer frequency (CNTFRQ_EL0), for the kvm backend. Standard library only.

A guest reads CNTFRQ_EL0 untrapped, so it sees the host's value and cannot
migrate to a host with another one. On arm64 this process reads the
register itself: CNTFRQ_EL0 is readable at EL0 (Linux emulates the read
where it has disabled EL0 counter access; see el0.py). Elsewhere, or if that fails, the
device tree's timer node (``clock-frequency``, present only when firmware
could not program the register) is the fallback; else the frequency is
unknown.
"""

from __future__ import annotations

from pathlib import Path

from qemu_errata.errors import InputError
from qemu_errata.files import read_bytes
from qemu_errata.probe import a64
from qemu_errata.probe.el0 import untrapped_value

DEFAULT_DEVICE_TREE = Path("/proc/device-tree")
MAX_PROPERTY_BYTES = 4096  # far past a timer node's compatible list
_TIMER_COMPATIBLE = (b"arm,armv8-timer", b"arm,armv7-timer")


def read_timer_frequency(device_tree: Path = DEFAULT_DEVICE_TREE) -> tuple[int | None, str]:
    """The frequency in Hz and where it came from (for the profile's provenance)."""
    frequency = untrapped_value(a64.CNTFRQ_EL0)
    if frequency is not None:
        return frequency, "CNTFRQ_EL0"
    for node in _timer_nodes(device_tree):
        frequency = _big_endian_u32(node / "clock-frequency")
        if frequency:
            return frequency, str(node / "clock-frequency")
    return None, "unknown"


def _timer_nodes(device_tree: Path) -> list[Path]:
    try:
        nodes = sorted(device_tree.iterdir())
    except OSError:
        return []
    return [node for node in nodes if _compatible(node) & set(_TIMER_COMPATIBLE)]


def _compatible(node: Path) -> set[bytes]:
    try:
        return set(read_bytes(node / "compatible", MAX_PROPERTY_BYTES).split(b"\0"))
    except InputError:
        return set()


def _big_endian_u32(path: Path) -> int | None:
    try:
        data = read_bytes(path, MAX_PROPERTY_BYTES)
    except InputError:
        return None
    return int.from_bytes(data, "big") if len(data) == 4 else None
