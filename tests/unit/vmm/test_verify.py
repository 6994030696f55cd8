"""Comparing what a guest got (as QMP reports it) with a pool model."""

from __future__ import annotations

from support.vmm_pool import three_host_pool

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.pool import PoolModel
from qemu_errata.vmm.verify import GuestCpu, GuestRegisters, GuestState, VerifyReport, compare

A57, A76, N1 = 0x411FD070, 0x414FD0B1, 0x414FD0C1


def messages(report: VerifyReport) -> tuple[str, ...]:
    return tuple(difference.message for difference in report.differences)


def cpus(*midrs: int) -> tuple[GuestCpu, ...]:
    return tuple(GuestCpu(i, f"/machine/unattached/device[{i}]", m) for i, m in enumerate(midrs))


def impl_list(*entries: tuple[int, int, int]) -> list[dict[str, int]]:
    return [{"midr": m, "revidr": r, "aidr": a} for m, r, a in entries]


def as_model(model: PoolModel) -> GuestRegisters:
    """Registers equal to every field ``model`` sets."""
    catalogue = load_catalogue()
    fields = {
        f.qualified_name: f.raw(value)
        for name, value in model.id_registers.items()
        for f in catalogue[name].fields
    }
    return GuestRegisters("the test", fields, {})


def tcg(*midrs: int) -> GuestState:
    return GuestState(False, cpus(*midrs), None, as_model(three_host_pool()), 25_000_000)


FULL_LIST = impl_list((A57, 0, 0), (A76, 1, 0), (N1, 0, 0))


def test_tcg_guest_presenting_a_target_matches() -> None:
    report = compare(three_host_pool(), tcg(A57, A57))
    assert report.ok
    assert report.notes[1:] == ("no target implementation list (no machine property impl-cpu)",)


def test_every_vcpu_with_a_foreign_midr_is_reported() -> None:
    report = compare(three_host_pool(), tcg(A57, 0x410FD034, 0x461F0010))
    assert [(d.register, d.reason, d.values["guest"]) for d in report.differences] == [
        ("MIDR_EL1", "midr-not-in-target-list", "0x410fd034"),
        ("MIDR_EL1", "midr-not-in-target-list", "0x461f0010"),
    ]
    assert messages(report) == (
        "vCPU 1 (/machine/unattached/device[1]) presents Arm Cortex-A53 r0p4 (MIDR 0x410fd034), "
        "which is not a target implementation of the model",
        "vCPU 2 (/machine/unattached/device[2]) presents Fujitsu A64FX r1p0 (MIDR 0x461f0010), "
        "which is not a target implementation of the model",
    )


def test_kvm_guest_with_the_full_list_matches_and_midr_zero_is_a_note() -> None:
    guest = GuestState(True, cpus(0), FULL_LIST, as_model(three_host_pool()))
    report = compare(three_host_pool(), guest)
    assert not report.differences
    assert "MIDR reads 0 under KVM" in report.not_checked[-1].reason


def test_kvm_list_differences_name_each_entry() -> None:
    guest_list = impl_list((A57, 0, 0), (N1, 0, 0), (0x410FD034, 0, 0))
    report = compare(three_host_pool(), GuestState(True, cpus(N1), guest_list, "none"))
    assert messages(report) == (
        "the guest's target list lacks "
        "Arm Cortex-A76 r4p1 (MIDR 0x414fd0b1) (REVIDR 0x1, AIDR 0x0)",
        "the guest's target list has Arm Cortex-A53 r0p4 (MIDR 0x410fd034) (REVIDR 0x0, AIDR 0x0), "
        "which the model does not list",
    )


def test_kvm_guest_without_a_list_differs_from_a_multi_implementation_model() -> None:
    report = compare(three_host_pool(), GuestState(True, cpus(N1), None, "none"))
    assert not report.ok
    assert "the guest gets no target implementation list" in report.differences[0].message
    assert report.differences[0].reason == "no-target-list"


def test_unreadable_list_is_a_difference() -> None:
    report = compare(three_host_pool(), GuestState(True, cpus(N1), "impl", "none"))
    assert messages(report) == (
        "the machine's impl-cpu reads 'impl', not a list of implementations",
    )
