"""The hook's host-profile check applies KVM's ICC_CTLR_EL1 rules."""

from __future__ import annotations

import json
from pathlib import Path

from libvirt_hooks.domain import Pool, Target
from libvirt_hooks.hostcpus import HostImplementation
from libvirt_hooks.profilecheck import profile_problems
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.record import replace

N1 = 0x414FD0C1


def pool(icc: int) -> Pool:
    profile = load_embedded_profile("kvm-7.2-neoverse-n1")
    return Pool(
        [Target(N1, None, None)],
        profile.timer_frequency_hz,
        {
            "id_registers": dict(profile.id_registers),
            "firmware_registers": dict(profile.firmware_registers),
            "gic_registers": {"ICC_CTLR_EL1": icc},
        },
    )


def write_profile(path: Path, icc: int) -> str:
    profile = load_embedded_profile("kvm-7.2-neoverse-n1")
    profile = replace(profile, gic_registers={"ICC_CTLR_EL1": icc})
    path.write_text(json.dumps(profile.to_json()))
    return str(path)


def test_a_destination_with_fewer_priority_bits_is_refused(tmp_path: Path) -> None:
    here = write_profile(tmp_path / "host.json", 0x8B00)
    problems = profile_problems(pool(0x8C00), here, [HostImplementation(N1, 0, (0,))], [])
    assert len(problems) == 1
    assert "ICC_CTLR_EL1.PRIbits: the VM carries 0x4, and Linux 7.2" in problems[0]
    assert "refuses it (its own is 0x3)" in problems[0]


def test_a_destination_whose_seis_differs_is_refused_and_an_equal_one_allowed(
    tmp_path: Path,
) -> None:
    cpus = [HostImplementation(N1, 0, (0,))]
    differing = write_profile(tmp_path / "seis.json", 0xCC00)
    assert "ICC_CTLR_EL1.SEIS" in profile_problems(pool(0x8C00), differing, cpus, [])[0]
    equal = write_profile(tmp_path / "equal.json", 0x8C00)
    assert profile_problems(pool(0x8C00), equal, cpus, []) == []


def test_a_host_with_more_priority_bits_takes_the_vm_and_notes_the_one_way(tmp_path: Path) -> None:
    # A VM arriving carries the pool's 5 priority bits, which KVM accepts below the host's
    # own 7 (old to new); one started there would carry 7, which the pool's hosts refuse.
    here = write_profile(tmp_path / "host.json", 0x8E00)
    notes: list[str] = []
    problems = profile_problems(pool(0x8C00), here, [HostImplementation(N1, 0, (0,))], notes)
    assert problems == []
    assert any("ICC_CTLR_EL1.PRIbits: qemu-kvm cannot set it" in note for note in notes)


def test_a_register_the_newest_vmm_pins_is_no_note(tmp_path: Path) -> None:
    """The hook judges with the newest known VMM (qemu-kvm), which pins the PSCI version
    (kvm-psci-version): a guest started on this Linux 7.2 host (PSCI 1.3) gets the pool's
    1.1, so no note says it would keep 1.3."""
    vm = pool(0x8C00)
    vm.registers["firmware_registers"]["KVM_REG_ARM_PSCI_VERSION"] = 0x10001
    notes: list[str] = []
    here = write_profile(tmp_path / "host.json", 0x8C00)
    assert profile_problems(vm, here, [HostImplementation(N1, 0, (0,))], notes) == []
    assert not [note for note in notes if "KVM_REG_ARM_PSCI_VERSION" in note]
