"""Registers no VMM sets (firmware pseudo-registers, the GIC CPU interface) are requirements,
not writes: a guest keeps its first host's values and carries them to
every other host, whose KVM judges them (ICC_CTLR_EL1: PRIbits/IDbits not above the
destination's, SEIS and A3V equal, as vgic-sys-reg-v3.c checks)."""

from __future__ import annotations

import pytest

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import baseline, check
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.core.vmm_fit import baseline_with
from qemu_errata.core.vmms import vmm_named
from qemu_errata.errors import IncompatiblePoolError

ICC = "ICC_CTLR_EL1"
OWN = 0x8C00  # A3V, 24 ID bits, PRIbits 4 (5 priority bits): the nested hosts' GIC
PRI_6 = 0x8E00
PRI_3 = 0x8B00
WITH_SEIS = 0xCC00


def host(name: str, icc: int = OWN, model: str = "neoverse-n1") -> HostProfile:
    profile = load_embedded_profile(f"kvm-7.2-{model}")
    return replace(profile, host=name, gic_registers={ICC: icc})


def test_a_pool_lists_no_write_of_a_register_no_vmm_sets_and_says_so() -> None:
    old, new = (
        load_embedded_profile("kvm-7.2-neoverse-n1"),
        load_embedded_profile("kvm-7.2-cortex-a76"),
    )
    model = baseline([old, new])
    assert all(
        not name.startswith("KVM_REG") and name != ICC
        for names in model.host_writes.values()
        for name in names
    )
    assert model.notes[-1].startswith(
        "no VMM sets KVM_REG_ARM_PSCI_VERSION, KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1, "
    )
    assert "ICC_CTLR_EL1: they are requirements, not writes" in model.notes[-1]


def test_psci_versions_that_differ_refuse_the_pool_instead_of_promising_a_write() -> None:
    older, newer = (load_embedded_profile(f"kvm-{k}-neoverse-n1") for k in ("6.12", "7.2"))
    with pytest.raises(IncompatiblePoolError) as refused:
        baseline([older, newer])
    assert [str(b) for b in refused.value.blockers] == [
        "KVM_REG_ARM_PSCI_VERSION.Version: no VMM sets it, so a guest keeps the value of the "
        "host it starts on, and neoverse-n1-linux-6.12 refuses neoverse-n1-linux-7.2's '1.3' "
        "(0x10003) (its own is '1.1' (0x10001))"
    ]


def test_qemu_11_1_pins_the_lowest_psci_version_of_a_mixed_kernel_pool() -> None:
    # QEMU 11.1's kvm-psci-version property sets KVM_REG_ARM_PSCI_VERSION; 7.2 and 7.3
    # accept 1.1, a lower version than their own 1.3.
    profiles = [load_embedded_profile(f"kvm-{k}-neoverse-n1") for k in ("6.12", "7.2", "7.3")]
    model = baseline_with(profiles, vmm_named("qemu-11.1"))
    assert model.firmware_registers["KVM_REG_ARM_PSCI_VERSION"] == 0x10001
    assert model.host_writes["neoverse-n1-linux-7.3"] == ("KVM_REG_ARM_PSCI_VERSION",)
    assert model.host_writes["neoverse-n1-linux-6.12"] == ()


def test_qemu_7_2_cannot_pin_it_and_the_refusal_names_it() -> None:
    older, newer = (load_embedded_profile(f"kvm-{k}-neoverse-n1") for k in ("6.12", "7.3"))
    with pytest.raises(IncompatiblePoolError) as refused:
        baseline_with([older, newer], vmm_named("qemu-7.2"))
    assert str(refused.value.blockers[0]).startswith(
        "KVM_REG_ARM_PSCI_VERSION.Version: qemu-7.2 cannot set it (no CPU property setting "
        "KVM_REG_ARM_PSCI_VERSION), so a guest keeps the value of the host it starts on"
    )


def test_more_priority_bits_on_one_host_refuse_the_pool_naming_the_direction() -> None:
    with pytest.raises(IncompatiblePoolError) as refused:
        baseline([host("a"), host("b", PRI_6)])
    assert [str(b) for b in refused.value.blockers] == [
        "ICC_CTLR_EL1.PRIbits: no VMM sets it, so a guest keeps the value of the host it "
        "starts on, and a refuses b's 0x6 (its own is 0x4)"
    ]


def test_seis_that_differs_refuses_the_pool_both_ways() -> None:
    with pytest.raises(IncompatiblePoolError) as refused:
        baseline([host("a"), host("b", WITH_SEIS)])
    assert [(b.register, b.field) for b in refused.value.blockers] == [(ICC, "SEIS")]
    assert "b refuses a's NI (0x0)" in str(refused.value.blockers[0])
    assert "a refuses b's IMP (0x1)" in str(refused.value.blockers[0])


def test_check_refuses_fewer_priority_bits_than_the_model() -> None:
    model = baseline([host("a"), host("b")])
    result = check(model, host("c", PRI_3))
    assert [str(p) for p in result.problems] == [
        "ICC_CTLR_EL1.PRIbits: the model presents 0x4, the host has 0x3 (not safe under rule lower)"
    ]


def test_check_refuses_more_priority_bits_its_own_guests_would_carry() -> None:
    model = baseline([host("a"), host("b")])
    result = check(model, host("c", PRI_6))
    assert [str(p) for p in result.problems] == [
        "ICC_CTLR_EL1.PRIbits: no VMM sets it, so a guest started on this host keeps its 0x6, "
        "which a host of the pool (with 0x4) refuses"
    ]


def test_check_refuses_a_differing_a3v_and_accepts_an_equal_gic() -> None:
    model = baseline([host("a"), host("b")])
    assert check(model, host("c")).ok
    problems = check(model, host("c", OWN & ~0x8000)).problems
    assert {(p.register, p.field) for p in problems} == {(ICC, "A3V")}
