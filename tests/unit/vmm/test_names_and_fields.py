"""SYSREG property names per QEMU series or discovered, and the fields a model sets."""

from __future__ import annotations

import pytest
from support.vmm_pool import hand_written_model

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import PoolModel
from qemu_errata.errors import UnsettableFieldsError
from qemu_errata.vmm.args import qemu_arguments
from qemu_errata.vmm.dialects import Dialect, require_settable, vmm_config
from qemu_errata.vmm.names import QemuSeries, SysregNames, discovered_names

N1 = 0x414FD0C1


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (QemuSeries.V10, ["SYSREG_ID_AA64MMFR0_EL1_PARange", "SYSREG_ID_AA64MMFR0_EL1_TGran4_2"]),
        (QemuSeries.V3, ["SYSREG_ID_AA64MMFR0_EL1_PARANGE", "SYSREG_ID_AA64MMFR0_EL1_TGRAN4_2"]),
    ],
)
def test_each_series_spells_fields_its_own_way(series: QemuSeries, expected: list[str]) -> None:
    catalogue = load_catalogue()
    register = catalogue["ID_AA64MMFR0_EL1"]
    names = SysregNames(series)
    found = [names.property_of(register.field(f), catalogue) for f in ("PARANGE", "TGRAN4_2")]
    assert found == expected


def test_only_v10_has_midr_fields() -> None:
    catalogue = load_catalogue()
    part = catalogue["MIDR_EL1"].field("PartNum")
    assert SysregNames(QemuSeries.V10).property_of(part, catalogue) == "SYSREG_MIDR_EL1_PartNum"
    assert SysregNames(QemuSeries.V3).property_of(part, catalogue) is None


def test_discovered_names_match_exactly_either_spelling_with_or_without_prefix() -> None:
    catalogue = load_catalogue()
    offered = {
        "SYSREG_ID_AA64MMFR0_EL1_PARange",
        "ID_AA64PFR1_EL1_SSBS",
        "SYSREG_ID_AA64ISAR0_EL1_atomic",  # wrong case: QOM names are case-sensitive
        "pmu",
    }
    assert discovered_names(offered, catalogue) == {
        "ID_AA64MMFR0_EL1.PARANGE": "SYSREG_ID_AA64MMFR0_EL1_PARange",
        "ID_AA64PFR1_EL1.SSBS": "ID_AA64PFR1_EL1_SSBS",
    }


def test_a_qemu_lacking_a_needed_property_leaves_the_field_unsettable() -> None:
    catalogue = load_catalogue()
    names = SysregNames(QemuSeries.V10, discovered_names({"ID_AA64ISAR0_EL1_RNDR"}, catalogue))
    config = vmm_config(hand_written_model(N1), Dialect.QEMU_KVM, names=names)
    assert dict(config.cpu_properties) == {"ID_AA64ISAR0_EL1_RNDR": "0x0"}
    assert "ID_AA64ISAR0_EL1.ATOMIC" in config.unsettable
    with pytest.raises(UnsettableFieldsError, match=r"no property sets ID_AA64ISAR0_EL1\.TLB"):
        require_settable(config)


def test_with_a_host_profile_only_the_differing_fields_are_set() -> None:
    host = load_embedded_profile("kvm-7.2-neoverse-n1")
    registers = dict(host.id_registers)
    registers["ID_AA64MMFR0_EL1"] = (registers["ID_AA64MMFR0_EL1"] & ~0xF) | 0x2  # PARange 40
    model = PoolModel(
        id_registers=registers,
        target_implementations=TargetImplementations([TargetImplementation(N1, 0, 0)]),
    )
    config = vmm_config(model, Dialect.QEMU_KVM, host=host)
    assert config.cpu_properties == (("SYSREG_ID_AA64MMFR0_EL1_PARange", "0x2"),)
    assert config.unsettable == ()
    assert qemu_arguments(config)[:4] == [
        "-cpu",
        "host",
        "-global",
        "host-arm-cpu.SYSREG_ID_AA64MMFR0_EL1_PARange=0x2",
    ]


def test_a_field_the_hosts_kvm_cannot_write_is_refused_by_name() -> None:
    host = load_embedded_profile("kvm-7.2-neoverse-n1")
    registers = dict(host.id_registers)
    catalogue = load_catalogue()
    field = catalogue["ID_AA64PFR0_EL1"].field("AdvSIMD")
    assert host.writable_mask("ID_AA64PFR0_EL1") & field.mask == 0
    registers["ID_AA64PFR0_EL1"] = field.with_raw(registers["ID_AA64PFR0_EL1"], 0xF)
    model = PoolModel(
        id_registers=registers,
        target_implementations=TargetImplementations([TargetImplementation(N1, 0, 0)]),
    )
    config = vmm_config(model, Dialect.QEMU_KVM, host=host)
    assert config.unsettable == (
        "ID_AA64PFR0_EL1.AdvSIMD (KVM of neoverse-n1-linux-7.2 does not let it be set)",
    )


def test_qemu_tcg_names_the_fields_its_cpu_model_presents_otherwise() -> None:
    # A hand-written model asking for ID_AA64ISAR0_EL1 = 0x11120 (no DP, RDM, LSE).
    config = vmm_config(hand_written_model(N1), Dialect.QEMU_TCG, "neoverse-n1")
    assert config.notes[-1] == (
        "qemu-tcg sets no ID register field: the guest sees CPU model neoverse-n1's own "
        "values, which differ from the model's in ID_AA64ISAR0_EL1.DP, "
        "ID_AA64ISAR0_EL1.RDM, ID_AA64ISAR0_EL1.ATOMIC"
    )
