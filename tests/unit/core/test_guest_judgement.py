"""guest-view's self-judgement (core/guest_judgement.py): a guest's log and words against the
prediction for it."""

from __future__ import annotations

from qemu_errata.core.board import QEMU_VIRT, guest_board
from qemu_errata.core.errata import kernel_view, load_errata_table
from qemu_errata.core.guest_judgement import judge
from qemu_errata.core.guest_log import read_guest_log, read_vulnerabilities
from qemu_errata.core.implementations import TargetImplementation

TABLE = load_errata_table("7.2.13")
N1 = TargetImplementation(0x414FD0C1, 0, 0)
# kvm-7.2-neoverse-n1's registers: CSV2 = CSV3 = 1, SSBS, no E0PD; its KVM's firmware answers.
REGISTERS = {
    "ID_AA64PFR0_EL1": 0x1100000011110112,
    "ID_AA64PFR1_EL1": 0x10,
    "ID_AA64MMFR2_EL1": 0x1011,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1": 2,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2": 0,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3": 1,
}
# What a real Debian 7.2.13 guest on a nested Neoverse-N1 printed (errata of the N1 alone).
CONSOLE = """\
[    0.000000] KASLR enabled
[    0.000000] CPU features: kernel page table isolation forced ON by KASLR
[    0.000000] CPU features: detected: Kernel page table isolation (KPTI)
[    0.000000] CPU features: detected: Spectre-v4
[    0.000000] CPU features: detected: Spectre-BHB
[    0.000000] CPU features: detected: Broken broadcast TLBI completion
[    0.000000] CPU features: detected: SSBS not fully self-synchronizing
[    5.000000] qemu-errata: vulnerabilities: meltdown: Not affected
[    5.000000] qemu-errata: vulnerabilities: spec_store_bypass: Mitigation: Speculative Store Bypass disabled via prctl
[    5.000000] qemu-errata: vulnerabilities: spectre_v1: Mitigation: __user pointer sanitization
[    5.000000] qemu-errata: vulnerabilities: spectre_v2: Mitigation: CSV2, BHB
[    5.000000] qemu-errata: vulnerabilities: retbleed: Not affected
[    5.000000] qemu-errata: vulnerabilities end
"""  # noqa: E501 (console lines as the guest wrote them)


def judged(console: str, command_line: str = "") -> list[str]:
    lines = console.splitlines()
    view = kernel_view(TABLE, [N1], REGISTERS, board=guest_board(command_line))
    result = judge(
        TABLE.kernel, view, read_guest_log(lines, TABLE, [N1]), lines, read_vulnerabilities(lines)
    )
    return [d.describe() for d in result.differences]


def test_the_real_n1_guest_agrees_with_the_prediction_for_qemus_board() -> None:
    lines = CONSOLE.splitlines()
    view = kernel_view(TABLE, [N1], REGISTERS, board=QEMU_VIRT)
    result = judge(
        TABLE.kernel, view, read_guest_log(lines, TABLE, [N1]), lines, read_vulnerabilities(lines)
    )
    assert result.differences == ()
    assert (result.files_compared, result.files_open) == (5, ())
    assert result.summary().startswith("The guest agrees with the errata prediction for Linux")


def test_each_difference_is_named_kpti_words_and_an_unpredicted_log_line() -> None:
    """With nokaslr predicted, the same guest (which had a seed) differs three ways."""
    assert judged(CONSOLE, "nokaslr") == [
        "detected Kernel page table isolation (KPTI): the guest logged it; predicted: not logged",
        'kpti forcing: the guest logged "CPU features: kernel page table isolation forced ON by'
        ' KASLR"; predicted: not forced',
    ]


def test_words_that_differ_and_an_arm64_file_missing_are_differences() -> None:
    console = CONSOLE.replace("Mitigation: CSV2, BHB", "Vulnerable").replace(
        "[    5.000000] qemu-errata: vulnerabilities: meltdown: Not affected\n", ""
    )
    assert judged(console) == [
        'vulnerabilities meltdown: the guest printed no such file; predicted: "Not affected"',
        'vulnerabilities spectre_v2: the guest printed "Vulnerable"; predicted:'
        ' "Mitigation: CSV2, BHB"',
    ]


def test_an_arm64_file_missing_is_a_difference_even_where_the_words_are_open() -> None:
    # Without the firmware's ARCH_WORKAROUND answers spectre_v2's words are open (None); a
    # guest that printed no spectre_v2 at all still differs: the kernel writes that file.
    firmware = ("KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1", "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3")
    registers = {k: v for k, v in REGISTERS.items() if k not in firmware}
    registers["ID_AA64PFR0_EL1"] &= ~(0xF << 56)  # no CSV2: Spectre-v2 left to the firmware
    view = kernel_view(TABLE, [N1], registers, board=QEMU_VIRT)
    assert view.vulnerabilities()["spectre_v2"] is None
    lines = [line for line in CONSOLE.splitlines() if "spectre_v2" not in line]
    result = judge(
        TABLE.kernel, view, read_guest_log(lines, TABLE, [N1]), lines, read_vulnerabilities(lines)
    )
    assert [d.describe() for d in result.differences if d.kind == "vulnerabilities"] == [
        "vulnerabilities spectre_v2: the guest printed no such file; predicted: words the"
        " hypervisor's firmware answer decides",
    ]
