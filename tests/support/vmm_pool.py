"""A 3-host pool for the render/apply/verify tests, and its QEMU arguments (tests/golden).

Built from hand-written profiles: Neoverse-N1 and Cortex-A76 hosts share QEMU
7.2's Neoverse-N1 register values (the A76 with REVIDR 0x1), the third host is
a Cortex-A57; every field is writable, so the pool lowers the N1/A76 features
to the A57's.
"""

from __future__ import annotations

from support.golden import golden_lines
from support.hosts import (
    CORTEX_A57_MIDR,
    CORTEX_A57_REGISTERS,
    CORTEX_A76_MIDR,
    NEOVERSE_N1_MIDR,
    NEOVERSE_N1_REGISTERS,
    all_fields_writable,
    profile_json,
)

from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import PoolModel, baseline
from qemu_errata.core.profile import profile_from_json

# The golden arguments of the 3-host pool (tests/golden): every field the A57 lacks is
# lowered on the N1/A76 hosts, and the target list holds the three implementations.
KVM_GOLDEN = golden_lines("render-qemu-kvm.args")
TCG_GOLDEN = golden_lines("render-qemu-tcg.args")


def three_host_pool() -> PoolModel:
    profiles = [
        profile_json(
            "n1",
            NEOVERSE_N1_MIDR,
            NEOVERSE_N1_REGISTERS,
            all_fields_writable(NEOVERSE_N1_REGISTERS),
        ),
        profile_json(
            "a76",
            CORTEX_A76_MIDR,
            NEOVERSE_N1_REGISTERS,
            all_fields_writable(NEOVERSE_N1_REGISTERS),
            revidr="0x1",
        ),
        profile_json(
            "a57", CORTEX_A57_MIDR, CORTEX_A57_REGISTERS, all_fields_writable(CORTEX_A57_REGISTERS)
        ),
    ]
    return baseline([profile_from_json(p, p["host"]) for p in profiles])


def hand_written_model(*midrs: int) -> PoolModel:
    """A model as an operator writes it: registers and targets, no losses recorded."""
    return PoolModel(
        id_registers={"ID_AA64ISAR0_EL1": 0x11120},
        target_implementations=TargetImplementations(
            TargetImplementation(midr, None, None) for midr in midrs
        ),
    )
