"""Comparing what a guest got (as QMP reports it) with a pool model."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from support.vmm_pool import three_host_pool

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.pool import PoolModel
from qemu_errata.vmm.qmp import read_guest
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


class KvmMonitor:
    """The QMP answers read_guest gets from a QEMU 11.1 KVM guest of one vCPU whose
    kvm-psci-version reads ``psci`` (None: a QEMU without the property)."""

    CPU = "/machine/unattached/device[0]"

    def __init__(self, psci: str | None) -> None:
        self.psci = psci

    async def execute(self, command: str, arguments: Mapping[str, Any] | None = None) -> Any:
        arguments = arguments or {}
        if command == "query-kvm":
            return {"enabled": True, "present": True}
        if command == "query-cpus-fast":
            return [{"cpu-index": 0, "qom-path": self.CPU}]
        if command == "qom-list":
            shown = self.psci is not None and arguments["path"] == self.CPU
            return [{"name": name} for name in ("type", "kvm-psci-version")[: 1 + shown]]
        assert command == "qom-get", command
        return {"midr": 0, "kvm-psci-version": self.psci}[arguments["property"]]


def test_a_kvm_guests_psci_version_is_read_from_kvm_psci_version() -> None:
    """QEMU 11.1's kvm-psci-version reads the version KVM gave the vCPU ("1.1"); one it has
    no name for reads "Unknown PSCI-version: N", which is not taken for a version."""
    catalogue = load_catalogue()
    field = "KVM_REG_ARM_PSCI_VERSION.Version"
    guest = asyncio.run(read_guest(KvmMonitor("1.1"), catalogue))
    assert guest.firmware is not None
    assert (guest.firmware.fields, guest.firmware.unknown) == ({field: 0x10001}, {})
    assert guest.firmware.source == "the firmware properties of vCPU 0"
    odd = asyncio.run(read_guest(KvmMonitor("Unknown PSCI-version: 10004"), catalogue))
    assert odd.firmware is not None
    assert odd.firmware.unknown == {
        field: "the vCPU's kvm-psci-version reads 'Unknown PSCI-version: 10004'"
    }
    assert asyncio.run(read_guest(KvmMonitor(None), catalogue)).firmware is None
