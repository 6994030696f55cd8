"""Reading a system register that EL0 may read, in this process. Standard library only.

Registers with op1 = 3 (CNTFRQ_EL0, CTR_EL0, DCZID_EL0) are readable at EL0,
and some of them reach a KVM guest untrapped, so the guest sees the
hardware's value whatever KVM offers userspace. On arm64 ``mrs x0, <reg>;
ret`` is put into an executable mapping and called through ctypes. The code
is written to a memfd and then mapped, so the kernel makes the instruction
cache coherent when it maps the page.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import platform

from qemu_errata.core.catalogue import Encoding
from qemu_errata.probe import a64

_ARM64_MACHINES = ("aarch64", "arm64")
_EL0_OP1 = 3


def readable_here(encoding: Encoding) -> bool:
    """Whether this process can read the register: an arm64 machine and an EL0 register."""
    return platform.machine() in _ARM64_MACHINES and encoding.op1 == _EL0_OP1


def read_el0_register(encoding: Encoding) -> int:
    """The register's value read by this process; OSError if no executable mapping is allowed."""
    code = a64.little_endian([a64.mrs(0, encoding), a64.RET])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    descriptor = os.memfd_create("qemu-errata-mrs", os.MFD_CLOEXEC)
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


def untrapped_value(encoding: Encoding | None) -> int | None:
    """The hardware's value of an EL0 register a guest reads untrapped (DCZID_EL0), read by
    this process; None where this process cannot read it."""
    if encoding is None or not readable_here(encoding):
        return None
    with contextlib.suppress(OSError):  # no executable mapping allowed here
        return read_el0_register(encoding)
    return None
