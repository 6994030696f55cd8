"""guest-view's report of a boot: the JSON keys (schema-valid) and the text, from a GuestBoot."""

from __future__ import annotations

from support.schemas import validate

from qemu_errata.commands.guest_view import known_to
from qemu_errata.core.board import QEMU_VIRT
from qemu_errata.core.errata import kernel_view, load_errata_table
from qemu_errata.core.guest_judgement import judge
from qemu_errata.core.guest_log import read_guest_log, read_vulnerabilities
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import PoolModel
from qemu_errata.probe.guest_boot import GuestBoot, TargetAnswer
from qemu_errata.probe.mmio_program import GuestRead
from qemu_errata.reports.guest_view import GuestView, describe, differing, guest_view_json

A76_R3P0 = TargetImplementation(0x413FD0B0, 0, 0)
N1_R4P1 = TargetImplementation(0x414FD0C1, 0, 0)
MODEL = PoolModel(
    id_registers={"ID_AA64PFR0_EL1": 0x1100000011111112, "GMID_EL1": 0, "CTR_EL0": 0x8444C004},
    target_implementations=TargetImplementations([A76_R3P0, N1_R4P1]),
)
CONSOLE = """\
[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x414fd0c1]
[    0.000000] smccc: KVM: Number of target implementation CPUs is 2
[    0.000000] CPU features: detected: GICv3 CPU interface
[    0.000000] CPU features: detected: ARM erratum 1418040
[    0.401280] alternatives: applying system-wide alternatives
[    5.100000] qemu-errata: vulnerabilities: meltdown: Not affected
[    5.100000] qemu-errata: vulnerabilities: spectre_v1: Mitigation: __user pointer sanitization
[    5.100000] qemu-errata: vulnerabilities end
"""


def boot() -> GuestBoot:
    return GuestBoot(
        reads={
            "MIDR_EL1": GuestRead(0x414FD0C1),
            "ID_AA64PFR0_EL1": GuestRead(0x1100000011111112),
            "GMID_EL1": GuestRead(None, 0x2000000),
            "CTR_EL0": GuestRead(0x84448004),
        },
        console=bytearray(CONSOLE.encode()),
        list_offered=True,
        version_calls=1,
        answers=[TargetAnswer(0, A76_R3P0), TargetAnswer(1, N1_R4P1), TargetAnswer(2, None)],
        seconds=20.25,
    )


def seen() -> GuestView:
    """The report of boot(), judged against the prediction for its known implementations."""
    table, lines = load_errata_table("7.2.13"), CONSOLE.splitlines()
    log = read_guest_log(lines, table, known_to(boot()))
    view = kernel_view(table, known_to(boot()), MODEL.id_registers, board=QEMU_VIRT)
    judged = judge(table.kernel, view, log, lines, read_vulnerabilities(lines))
    return GuestView("m.json", MODEL, boot(), log, QEMU_VIRT, judged)


def test_the_json_report_has_the_keys_and_validates() -> None:
    document = guest_view_json(seen())
    validate(document, "guest-view")
    # silicon-errata.rst files Cortex-A76's 1188873 under ARM64_ERRATUM_1418040 as well.
    assert document["errata"] == [
        {
            "description": "ARM erratum 1418040",
            "ids": ["ARM erratum 1188873", "ARM erratum 1418040"],
        }
    ]
    assert document["features"] == ["GICv3 CPU interface", "ARM erratum 1418040"]
    assert document["target_implementations"]["received"] == [
        {"index": 0, "midr": "0x413fd0b0", "revidr": "0x0", "aidr": "0x0"},
        {"index": 1, "midr": "0x414fd0c1", "revidr": "0x0", "aidr": "0x0"},
        {"index": 2},
    ]
    assert document["target_implementations"]["guest_log"] == [
        "Number of target implementation CPUs is 2"
    ]
    assert document["id_registers"]["MIDR_EL1"] == {"guest": "0x414fd0c1", "model": None}
    assert document["id_registers"]["GMID_EL1"]["guest"].startswith("UNDEFINED")
    assert document["log"] == CONSOLE
    assert document["vulnerabilities"] == {
        "meltdown": "Not affected",
        "spectre_v1": "Mitigation: __user pointer sanitization",
    }
    assert document["board"] == {"machine": "virt", "kaslr_seed": True, "command_line": ""}


def test_the_guest_knows_the_list_it_received_else_the_midr_it_read() -> None:
    assert known_to(boot()) == [A76_R3P0, N1_R4P1]
    alone = GuestBoot(reads={"MIDR_EL1": GuestRead(0x414FD0C1), "REVIDR_EL1": GuestRead(0)})
    assert known_to(alone) == [TargetImplementation(0x414FD0C1, 0, None)]


def test_a_register_the_guest_reads_otherwise_differs_an_undefined_one_reads_zero() -> None:
    assert differing(MODEL, boot()) == ["CTR_EL0"]


def test_the_text_report_names_what_the_guest_read_received_and_enabled() -> None:
    text = describe(seen())
    assert "ran to its userspace's end in 20.2 s" in text
    assert "ID registers its code read with MRS: 4; differing from the model: CTR_EL0" in text
    assert "  MIDR_EL1: Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1)" in text
    assert "the guest asked for 3 of 2 entries" in text
    assert "  0: Arm Cortex-A76 r3p0 (MIDR 0x413fd0b0), REVIDR 0x0, AIDR 0x0" in text
    assert "  2: INVALID_PARAMETER" in text
    assert "  guest: Number of target implementation CPUs is 2" in text
    assert (
        "Errata workarounds it enabled (1):\n"
        "  ARM erratum 1418040 (ARM erratum 1188873, ARM erratum 1418040)\n"
    ) in text
    # The prediction for a guest on QEMU's board: KPTI forced on by KASLR (no E0PD), which
    # this console does not show: each difference is listed, and the last line says so.
    assert (
        '  kpti forcing: the guest logged no forcing; predicted: "CPU features: kernel page'
        ' table isolation forced ON by KASLR"'
    ) in text
    assert text.splitlines()[-1].startswith(
        "The guest differs from the errata prediction for Linux 7.2.13 in "
    )


def test_a_list_of_one_entry_is_one_entry() -> None:
    one = PoolModel(id_registers={}, target_implementations=TargetImplementations([N1_R4P1]))
    guest = GuestBoot(list_offered=True, answers=[TargetAnswer(0, N1_R4P1)])
    table = load_errata_table("7.2.13")
    log = read_guest_log([], table, [N1_R4P1])
    view = kernel_view(table, [N1_R4P1], {}, board=QEMU_VIRT)
    judged = judge(table.kernel, view, log, [], read_vulnerabilities([]))
    text = describe(GuestView("m.json", one, guest, log, QEMU_VIRT, judged))
    assert "Target implementation list: the guest asked for 1 of 1 entry\n" in text
