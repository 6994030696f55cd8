"""A 3-host pool for the render/apply/verify tests, and its QEMU arguments (golden).

Built from hand-written profiles: Neoverse-N1 and Cortex-A76 hosts share QEMU
7.2's Neoverse-N1 register values (the A76 with REVIDR 0x1), the third host is
a Cortex-A57; every field is writable, so the pool lowers the N1/A76 features
to the A57's.
"""

from __future__ import annotations

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

# The golden arguments of the 3-host pool: every field the A57 lacks is lowered on
# the N1/A76 hosts, and the target list holds the three implementations.
KVM_GOLDEN = [
    "-cpu",
    "host",
    *[
        arg
        for setting in [
            "ID_AA64PFR0_EL1_CSV3=0x0",
            "ID_AA64PFR0_EL1_CSV2=0x0",
            "ID_AA64PFR0_EL1_RAS=0x0",
            "ID_AA64PFR0_EL1_AdvSIMD=0x0",
            "ID_AA64PFR0_EL1_FP=0x0",
            "ID_AA64PFR0_EL1_EL3=0x1",
            "ID_AA64PFR0_EL1_EL2=0x1",
            "ID_AA64PFR0_EL1_EL1=0x1",
            "ID_AA64PFR1_EL1_SSBS=0x0",
            "ID_AA64DFR0_EL1_PMUVer=0x1",
            "ID_AA64DFR0_EL1_DebugVer=0x6",
            "ID_AA64ISAR0_EL1_DP=0x0",
            "ID_AA64ISAR0_EL1_RDM=0x0",
            "ID_AA64ISAR0_EL1_Atomic=0x0",
            "ID_AA64ISAR1_EL1_LRCPC=0x0",
            "ID_AA64ISAR1_EL1_DPB=0x0",
            "ID_AA64MMFR0_EL1_TGran16=0x0",
            "ID_AA64MMFR0_EL1_PARange=0x2",
            "ID_AA64MMFR1_EL1_XNX=0x0",
            "ID_AA64MMFR1_EL1_PAN=0x0",
            "ID_AA64MMFR1_EL1_LO=0x0",
            "ID_AA64MMFR1_EL1_HPDS=0x0",
            "ID_AA64MMFR1_EL1_VH=0x0",
            "ID_AA64MMFR1_EL1_VMIDBits=0x0",
            "ID_AA64MMFR1_EL1_HAFDBS=0x0",
            "ID_AA64MMFR2_EL1_IESB=0x0",
            "ID_AA64MMFR2_EL1_UAO=0x0",
            "ID_AA64MMFR2_EL1_CnP=0x0",
        ]
        for arg in ("-global", f"host-arm-cpu.SYSREG_{setting}")
    ],
    "-machine",
    "impl-cpu.0.midr=0x411fd070,impl-cpu.0.revidr=0x0,impl-cpu.0.aidr=0x0,"
    "impl-cpu.1.midr=0x414fd0b1,impl-cpu.1.revidr=0x1,impl-cpu.1.aidr=0x0,"
    "impl-cpu.2.midr=0x414fd0c1,impl-cpu.2.revidr=0x0,impl-cpu.2.aidr=0x0",
]

TCG_GOLDEN = ["-cpu", "neoverse-n1", "-global", "neoverse-n1-arm-cpu.midr=0x411fd070"]


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
