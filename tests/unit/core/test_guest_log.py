"""Reading a Linux guest's console: what it detected, which are errata, its target list lines."""

from __future__ import annotations

from qemu_errata.core.guest_log import detection_done, is_erratum, read_guest_log

# From a Debian 7.2 guest on a nested neoverse-n1 host, given a two-entry list.
SERVICES = "hypervisor services detected (0x00000000 0x00000003 0x00000000 0x00000003)"
CONSOLE = f"""\
[    0.000000] smccc: KVM: {SERVICES}
[    0.000000] Detected PIPT I-cache on CPU0
[    0.000000] smccc: KVM: Number of target implementation CPUs is 2
[    0.000000] CPU features: detected: GICv3 CPU interface
[    0.000000] CPU features: detected: Spectre-v4
[    0.000000] CPU features: detected: Broken broadcast TLBI completion
[    0.000000] alternatives: applying boot alternatives
[    0.326354] CPU features: detected: ARM erratum 1418040\r
[    0.356788] CPU features: detected: LSE atomic instructions
[    0.401280] alternatives: applying system-wide alternatives
[    0.465503] CPU features: detected: Hardware dirty bit management on CPU0
[    0.465504] CPU features: detected: Hardware dirty bit management on CPU0
"""


def test_every_capability_once_in_the_order_logged_and_the_errata_among_them() -> None:
    log = read_guest_log(CONSOLE.splitlines())
    assert log.detected == (
        "GICv3 CPU interface",
        "Spectre-v4",
        "Broken broadcast TLBI completion",
        "ARM erratum 1418040",
        "LSE atomic instructions",
        "Hardware dirty bit management on CPU0",
    )
    assert log.errata == ("Spectre-v4", "Broken broadcast TLBI completion", "ARM erratum 1418040")


def test_the_target_list_lines_without_their_prefix() -> None:
    assert read_guest_log(CONSOLE.splitlines()).target_lines == (
        SERVICES,
        "Number of target implementation CPUs is 2",
    )


def test_errata_by_name_and_by_the_kernel_wording_that_does_not_say_so() -> None:
    assert is_erratum("ARM errata 1165522, 1319367, or 1530923")
    assert is_erratum("Cavium ThunderX2 erratum 219 (PRFM removal)")
    assert is_erratum("Spectre-BHB")
    assert is_erratum("SSBS not fully self-synchronizing")
    assert not is_erratum("Speculative Store Bypassing Safe (SSBS)")
    assert not is_erratum("Kernel page table isolation (KPTI)")


def test_detection_is_done_at_the_system_wide_alternatives_not_the_boot_ones() -> None:
    assert detection_done("[    0.401280] alternatives: applying system-wide alternatives")
    assert not detection_done("[    0.000000] alternatives: applying boot alternatives")
