"""Shared test data: host profiles written by hand from real CPU models.

The register values are QEMU 7.2's Cortex-A57 and Neoverse-N1 models
(target/arm/cpu64.c); the masks are chosen per test, since QEMU cannot show
a kernel's writable masks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.profile import HostProfile

NEOVERSE_N1_MIDR = "0x414fd0c1"
CORTEX_A57_MIDR = "0x411fd070"
CORTEX_A76_MIDR = "0x414fd0b1"

NEOVERSE_N1_REGISTERS = {
    "ID_AA64PFR0_EL1": "0x1100000010111112",
    "ID_AA64PFR1_EL1": "0x10",
    "ID_AA64ISAR0_EL1": "0x100010211120",
    "ID_AA64ISAR1_EL1": "0x100001",
    "ID_AA64MMFR0_EL1": "0x101122",
    "ID_AA64MMFR1_EL1": "0x10212122",
    "ID_AA64MMFR2_EL1": "0x1011",
    "ID_AA64DFR0_EL1": "0x10305408",
    "CTR_EL0": "0x8444c004",
    "CLIDR_EL1": "0x82000023",
}

CORTEX_A57_REGISTERS = {
    "ID_AA64PFR0_EL1": "0x2222",
    "ID_AA64PFR1_EL1": "0x0",
    "ID_AA64ISAR0_EL1": "0x11120",
    "ID_AA64ISAR1_EL1": "0x0",
    "ID_AA64MMFR0_EL1": "0x1124",
    "ID_AA64MMFR1_EL1": "0x0",
    "ID_AA64MMFR2_EL1": "0x0",
    "ID_AA64DFR0_EL1": "0x10305106",
    "CTR_EL0": "0x8444c004",
    "CLIDR_EL1": "0x82000023",
}


def all_fields_writable(registers: Mapping[str, str]) -> dict[str, str]:
    """Masks that let userspace change every described field of these registers."""
    catalogue = load_catalogue()
    return {name: f"{catalogue[name].field_bits:#x}" for name in registers if name in catalogue}


def profile_json(
    host: str,
    midr: str,
    registers: Mapping[str, str],
    masks: Mapping[str, str] | None,
    *,
    timer_frequency_hz: int | None = 25_000_000,
    revidr: str = "0x0",
) -> dict[str, Any]:
    return {
        "format": "qemu-errata/host-profile/1",
        "host": host,
        "implementations": [{"midr": midr, "revidr": revidr, "aidr": "0x0", "cpus": [0, 1]}],
        "id_registers": dict(registers),
        "writable_masks": None if masks is None else dict(masks),
        "timer_frequency_hz": timer_frequency_hz,
    }


def host_profile(name: str, *implementations: tuple[int, tuple[int, ...]]) -> HostProfile:
    """A host known only by its (MIDR, CPUs) implementations: what sysfs tells."""
    return HostProfile(
        host=name,
        implementations=tuple(
            Implementation(midr, 0, None, cpus) for midr, cpus in implementations
        ),
        id_registers={},
        writable_masks=None,
        timer_frequency_hz=None,
    )
