"""The profiles shipped with the package: real QEMU 7.2 and real-kernel data, loadable."""

from __future__ import annotations

import pytest

from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.pool import baseline
from qemu_errata.errors import IncompatiblePoolError, InputError

QEMU_MODELS = {  # facts file section 6
    "qemu-cortex-a57": 0x411FD070,
    "qemu-cortex-a72": 0x410FD083,
    "qemu-cortex-a76": 0x414FD0B1,
    "qemu-neoverse-n1": 0x414FD0C1,
    "qemu-a64fx": 0x461F0010,
    "qemu-max": 0x000F0510,
}


def test_every_qemu_model_is_shipped() -> None:
    assert set(QEMU_MODELS) <= set(embedded_profile_names())


@pytest.mark.parametrize("name", sorted(QEMU_MODELS))
def test_shipped_profile_is_the_model(name: str) -> None:
    profile = load_embedded_profile(name)
    assert profile.host == name
    assert [i.midr for i in profile.implementations] == [QEMU_MODELS[name]]
    assert profile.id_registers["MIDR_EL1"] == QEMU_MODELS[name]
    assert profile.writable_masks is None  # not observable from QEMU
    assert profile.provenance["backend"] == "qemu"
    assert profile.provenance["qemu_cpu"] == name.removeprefix("qemu-")


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"'qemu-z99': unknown \(known: .*qemu-neoverse-n1"):
        load_embedded_profile("qemu-z99")


KERNEL_PROFILES = [
    f"kvm-{kernel}-{model.removeprefix('qemu-')}"
    for kernel in ("6.12", "7.2", "7.3")
    for model in QEMU_MODELS
]


@pytest.mark.parametrize("name", KERNEL_PROFILES)
def test_real_kernel_profiles_carry_real_masks(name: str) -> None:
    profile = load_embedded_profile(name)
    qemu = load_embedded_profile("qemu-" + name.split("-", 2)[2])
    assert profile.provenance["backend"] == "kvm"
    assert profile.provenance["kernel"].startswith(name.split("-")[1] + ".")
    assert profile.implementations[0].midr == qemu.implementations[0].midr
    assert profile.writable_masks  # KVM_ARM_GET_REG_WRITABLE_MASKS answered
    assert profile.capabilities["writable_imp_id_regs"] is not name.startswith("kvm-6.12-")


def test_real_kernel_pools_as_the_nested_matrix_found_them() -> None:
    n1, a76, a72 = (
        load_embedded_profile(f"kvm-6.12-{m}") for m in ("neoverse-n1", "cortex-a76", "cortex-a72")
    )
    assert {(loss.field.qualified_name) for loss in baseline([n1, a76]).losses} == {
        "ID_AA64PFR1_EL1.SSBS",
        "ID_AA64MMFR0_EL1.PARANGE",
    }
    with pytest.raises(IncompatiblePoolError) as refused:
        baseline([n1, a72])
    assert {f"{b.register}.{b.field}" for b in refused.value.blockers} == {
        "ID_AA64PFR0_EL1.RAS",
        "ID_AA64PFR0_EL1.AdvSIMD",
        "ID_AA64PFR0_EL1.FP",
        "ID_AA64MMFR1_EL1.XNX",
        "ID_AA64MMFR1_EL1.VH",
        "ID_AA64MMFR1_EL1.VMIDBits",
        # No VMM sets them: the A72's KVM refuses the N1's levels guests carry.
        "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1.Level",
        "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3.Level",
    }
