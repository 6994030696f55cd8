"""What one host holds for the pool: its value of a register, and the bits it lets a VMM write."""

from __future__ import annotations

from collections.abc import Mapping

from qemu_errata.core.catalogue import (
    Register,
)
from qemu_errata.core.midr import MIDR_REGISTER
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.vmms import Vmm

TIMER_REGISTER = "CNTFRQ_EL0"
# What check() names as the register of a host CPU outside the target list.
IDENTITY_REGISTER = MIDR_REGISTER
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


def set_by(vmm: Vmm | None, register: Register) -> bool:
    """Whether the VMM gives guests the pool's value of ``register`` (not their host's).

    ID registers are written where the pool needs it (vmm_fit refuses a VMM that cannot);
    firmware and GIC registers only where the VMM has a property for them.
    """
    if register.kind.set_by_vmm:
        return True
    return vmm is not None and vmm.sets(register)


def no_vmm_sets(vmm: Vmm | None, register: Register) -> str:
    """How messages say that a guest keeps its host's value of ``register``."""
    if vmm is None:
        return "no VMM sets it"
    return f"{vmm.name} cannot set it ({vmm.lacks(register)})"
