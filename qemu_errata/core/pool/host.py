"""What one host holds for the pool: its value of a register, and the bits it lets a VMM write."""

from __future__ import annotations

from collections.abc import Mapping

from qemu_errata.core.catalogue import (
    Register,
)
from qemu_errata.core.profile import HostProfile

TIMER_REGISTER = "CNTFRQ_EL0"
# What check() names as the register of a host CPU outside the target list.
IDENTITY_REGISTER = "MIDR_EL1"
WRITABLE_IDENTITY_CAPABILITY = "writable_imp_id_regs"


def writable_bits(profile: HostProfile, name: str, register: Register | None) -> int:
    """The bits of ``name`` the host lets userspace change."""
    if register is not None and register.kind.writable_by_rule:
        return register.field_bits
    return profile.writable_mask(name)


def host_value(
    profile: HostProfile, group: str, name: str, register: Register | None
) -> int | None:
    """The host's value of ``name``; None when unknown (0 where absence means no feature)."""
    registers: Mapping[str, int] = getattr(profile, group)
    if name in registers:
        return registers[name]
    if register is not None and register.kind.absent_reads_zero:
        return 0
    return None


def undescribed_bits(name: str, register: Register | None, bits: int) -> str:
    """How messages name the bits no field describes (the whole of an uncatalogued register)."""
    return f"bits {bits:#x} of {name}, which no field describes," if register else name
