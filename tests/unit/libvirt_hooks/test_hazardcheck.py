"""The hook's lost-mitigation check says what a host's guests lose, in the words that hold."""

from __future__ import annotations

from libvirt_hooks.domain import Pool, Target
from libvirt_hooks.hazardcheck import hazard_problems
from libvirt_hooks.hostcpus import HostImplementation
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import load_embedded_profile

A53 = 0x410FD034  # Arm Cortex-A53 r0p4: on the Spectre-BHB safe list
A72 = 0x410FD083  # Arm Cortex-A72 r0p3: on the Spectre-BHB loop list


def test_a_host_vulnerable_anyway_is_refused_for_its_guests_words_not_a_lost_mitigation() -> None:
    # No CSV2 and a firmware answering NOT_AVAIL for ARCH_WORKAROUND_1: the A72's guests
    # detect Spectre-v2 and stay Vulnerable, and so leave Spectre-BHB unmitigated (the loop
    # list names the A72: evident to the hook). Beside the safe-listed A53 they say "Not
    # affected" instead: refused, without saying they lose a mitigation they never had.
    profile = load_embedded_profile("kvm-7.2-neoverse-n1")
    csv2 = load_catalogue()["ID_AA64PFR0_EL1"].field("CSV2")
    id_registers = {
        name: value
        for name, value in profile.id_registers.items()
        if name not in ("MIDR_EL1", "REVIDR_EL1")  # each host's own: not pinned
    }
    id_registers["ID_AA64PFR0_EL1"] = csv2.with_raw(id_registers["ID_AA64PFR0_EL1"], 0)
    firmware = {**profile.firmware_registers, "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1": 0}
    pool = Pool(
        [Target(A53, None, None), Target(A72, None, None)],
        profile.timer_frequency_hz,
        {"id_registers": id_registers, "firmware_registers": firmware},
    )
    problems = hazard_problems(pool, [HostImplementation(A72, 0, (0, 1))])
    (problem,) = [p for p in problems if p.startswith("Spectre-BHB")]
    assert problem.startswith(
        "Spectre-BHB LOST on Arm Cortex-A72 r0p3: Arm Cortex-A53 r0p4 is on the kernel's safe "
        "list (Linux 7.2, 7.3 guests skip it on every host); guests there are Vulnerable "
        "without it anyway, and say Not affected instead; run it on a host of its pool"
    )
    assert "run without it" not in problem
