"""Reading a Linux guest's console: what it detected, which are errata, its target list lines."""

from __future__ import annotations

from qemu_errata.core.errata import load_errata_table
from qemu_errata.core.guest_log import GuestErratum, detection_done, erratum_of, read_guest_log
from qemu_errata.core.implementations import TargetImplementation

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


TABLE = load_errata_table()
NEOVERSE_N1_R4P1 = TargetImplementation(0x414FD0C1, 0, 0)
CORTEX_A76_R3P0 = TargetImplementation(0x413FD0B0, 0, 0)


def test_every_capability_once_in_the_order_logged_and_the_errata_among_them() -> None:
    log = read_guest_log(CONSOLE.splitlines(), TABLE, [NEOVERSE_N1_R4P1, CORTEX_A76_R3P0])
    assert log.detected == (
        "GICv3 CPU interface",
        "Spectre-v4",
        "Broken broadcast TLBI completion",
        "ARM erratum 1418040",
        "LSE atomic instructions",
        "Hardware dirty bit management on CPU0",
    )
    assert [erratum.description for erratum in log.errata] == [
        "Spectre-v4",
        "Broken broadcast TLBI completion",
        "ARM erratum 1418040",
    ]


def test_a_log_line_errata_share_is_narrowed_to_the_errata_of_known_implementations() -> None:
    shared = "Broken broadcast TLBI completion"
    everyone = erratum_of(shared, TABLE, [])
    assert everyone is not None
    assert "ARM erratum 1286807" in everyone.ids
    assert len(everyone.ids) > 1
    a76 = erratum_of(shared, TABLE, [CORTEX_A76_R3P0])
    assert a76 is not None
    assert "ARM erratum 1286807" in a76.ids
    assert "Qualcomm Technologies Falkor/Kryo erratum 1009" not in a76.ids


def test_an_erratum_the_table_lacks_is_reported_without_ids_a_feature_not_at_all() -> None:
    assert erratum_of("Frobnicator erratum 42", TABLE, []) == GuestErratum(
        "Frobnicator erratum 42", ()
    )
    assert erratum_of("LSE atomic instructions", TABLE, []) is None
    assert erratum_of("Spectre-BHB", TABLE, []) == GuestErratum("Spectre-BHB", ("Spectre-BHB",))


def test_the_target_list_lines_without_their_prefix() -> None:
    assert read_guest_log(CONSOLE.splitlines(), TABLE, []).target_lines == (
        SERVICES,
        "Number of target implementation CPUs is 2",
    )


def test_detection_is_done_at_the_system_wide_alternatives_not_the_boot_ones() -> None:
    assert detection_done("[    0.401280] alternatives: applying system-wide alternatives")
    assert not detection_done("[    0.000000] alternatives: applying boot alternatives")
