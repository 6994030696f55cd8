"""The host's generic timer frequency (CNTFRQ_EL0), for the kvm backend. Standard library only.

A guest reads CNTFRQ_EL0 untrapped, so it sees the host's value and cannot
migrate to a host with another one. On arm64 this process reads the
register itself: CNTFRQ_EL0 is readable at EL0 (Linux emulates the read
where it has disabled EL0 counter access), so ``mrs x0, cntfrq_el0; ret``
is put into an executable mapping and called through ctypes. The code is
written to a memfd and then mapped, so the kernel makes the instruction
cache coherent when it maps the page. Elsewhere, or if that fails, the
device tree's timer node (``clock-frequency``, present only when firmware
could not program the register) is the fallback; else the frequency is
unknown.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
from pathlib import Path

from qemu_errata.probe import a64

DEFAULT_DEVICE_TREE = Path("/proc/device-tree")
_TIMER_COMPATIBLE = (b"arm,armv8-timer", b"arm,armv7-timer")
_ARM64_MACHINES = ("aarch64", "arm64")


def read_timer_frequency(device_tree: Path = DEFAULT_DEVICE_TREE) -> tuple[int | None, str]:
    """The frequency in Hz and where it came from (for the profile's provenance)."""
    if platform.machine() in _ARM64_MACHINES:
        try:
            return _read_cntfrq_el0(), "CNTFRQ_EL0"
        except OSError:
            pass  # no executable mapping allowed here: try the device tree
    for node in _timer_nodes(device_tree):
        frequency = _big_endian_u32(node / "clock-frequency")
        if frequency:
            return frequency, str(node / "clock-frequency")
    return None, "unknown"


def _read_cntfrq_el0() -> int:
    code = a64.little_endian([a64.mrs(0, a64.CNTFRQ_EL0), a64.RET])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    descriptor = os.memfd_create("qemu-errata-cntfrq", os.MFD_CLOEXEC)
    try:
        os.write(descriptor, code)
        address = libc.mmap(
            None, mmap.PAGESIZE, mmap.PROT_READ | mmap.PROT_EXEC, mmap.MAP_PRIVATE, descriptor, 0
        )
        if address in (None, ctypes.c_void_p(-1).value):
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error))
        try:
            return int(ctypes.CFUNCTYPE(ctypes.c_uint64)(address)())
        finally:
            libc.munmap(address, mmap.PAGESIZE)
    finally:
        os.close(descriptor)


def _timer_nodes(device_tree: Path) -> list[Path]:
    try:
        nodes = sorted(device_tree.iterdir())
    except OSError:
        return []
    return [node for node in nodes if _compatible(node) & set(_TIMER_COMPATIBLE)]


def _compatible(node: Path) -> set[bytes]:
    try:
        return set((node / "compatible").read_bytes().split(b"\0"))
    except OSError:
        return set()


def _big_endian_u32(path: Path) -> int | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return int.from_bytes(data, "big") if len(data) == 4 else None
