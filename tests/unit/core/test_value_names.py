"""Field values as operators read them: names that cannot be taken for the raw number."""

from __future__ import annotations

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile

CATALOGUE = load_catalogue()
PSCI = CATALOGUE["KVM_REG_ARM_PSCI_VERSION"].field("Version")


def test_every_psci_version_has_its_name() -> None:
    """PSCI_VERSION returns major in [31:16], minor in [15:0] (Arm DEN0022)."""
    versions = [(0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3)]
    assert [PSCI.describe(major << 16 | minor) for major, minor in versions] == [
        "'0.1' (0x1)",
        "'0.2' (0x2)",
        "'1.0' (0x10000)",
        "'1.1' (0x10001)",
        "'1.2' (0x10002)",
        "'1.3' (0x10003)",
    ]


def test_every_psci_version_a_real_kernel_offered_is_named() -> None:
    for name in embedded_profile_names():
        firmware = load_embedded_profile(name).firmware_registers
        if "KVM_REG_ARM_PSCI_VERSION" in firmware:
            assert PSCI.raw(firmware["KVM_REG_ARM_PSCI_VERSION"]) in PSCI.value_names, name


def test_ids_says_which_exception_class_reports_id_traps() -> None:
    """ID_AA64MMFR2_EL1.IDS: ID-space traps reported with ESR_ELx.EC 0x0, or 0x18."""
    ids = CATALOGUE["ID_AA64MMFR2_EL1"].field("IDS")
    assert (ids.describe(0), ids.describe(1)) == ("EC 0x0 (0x0)", "EC 0x18 (0x1)")
