"""The pool model a domain's pool metadata describes, for the checks that judge it."""

from __future__ import annotations

from libvirt_hooks.domain import Pool
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool.model import PoolModel


def pool_model(pool: Pool) -> PoolModel:
    """The pool model the metadata describes (what the hook needs of it)."""
    return PoolModel(
        target_implementations=TargetImplementations(
            TargetImplementation(t.midr, t.revidr, t.aidr) for t in pool.targets
        ),
        timer_frequency_hz=pool.timer_frequency_hz,
        id_registers=pool.registers.get("id_registers", {}),
        firmware_registers=pool.registers.get("firmware_registers", {}),
        gic_registers=pool.registers.get("gic_registers", {}),
        accepted_lost_mitigations=tuple(pool.accepted),
    )
