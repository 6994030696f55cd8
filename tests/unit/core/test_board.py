"""QEMU's virt board and the guest command line (core/board.py), and the guest's own words in
/sys/devices/system/cpu/vulnerabilities (core/vulnerabilities.py)."""

from __future__ import annotations

import pytest

from qemu_errata.core.board import QEMU_VIRT, Board, guest_board
from qemu_errata.core.errata import KernelView, kernel_view, load_errata_table
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.record import fields
from qemu_errata.core.vulnerabilities import guest_words_from
from qemu_errata.errors import CatalogueError, InputError

TABLE = load_errata_table("7.2.13")
NEOVERSE_N1_R4P1 = TargetImplementation(0x414FD0C1, 0, 0)
CORTEX_A72_R0P3 = TargetImplementation(0x410FD083, 0, 0)
CORTEX_A75_R3P0 = TargetImplementation(0x413FD0A0, 0, 0)  # not on the KPTI safe list
# QEMU's neoverse-n1 under KVM (kvm-7.2-neoverse-n1): CSV2 = CSV3 = 1, E0PD = 0, SSBS = 1.
N1_REGISTERS = {
    "ID_AA64PFR0_EL1": 0x1100000011110112,
    "ID_AA64PFR1_EL1": 0x10,
    "ID_AA64MMFR2_EL1": 0x1011,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1": 2,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2": 0,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3": 1,
}
# QEMU's cortex-a72 under KVM on a nested host whose firmware answers NOT_AVAIL to all three.
A72_REGISTERS = {
    "ID_AA64PFR0_EL1": 0x1000000001000222,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1": 0,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2": 0,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3": 0,
}
KPTI = "Kernel page table isolation (KPTI)"


def view(cpu: TargetImplementation, registers: dict[str, int], board: Board) -> KernelView:
    return kernel_view(TABLE, [cpu], registers, board=board)


def state(kernel: KernelView, mitigation: str) -> str:
    return next(v.state for v in kernel.mitigations if v.mitigation.id == mitigation)


def test_kaslr_seed_forces_kpti_on_a_neoverse_n1_yet_meltdown_reads_not_affected() -> None:
    """cpufeature.c unmap_kernel_at_el0(): KASLR with kaslr_requires_kpti() (no E0PD) forces
    KPTI on whatever CSV3 says; cpu_show_meltdown() reads __meltdown_safe (CSV3), not KPTI."""
    guest = view(NEOVERSE_N1_R4P1, N1_REGISTERS, QEMU_VIRT)
    kpti = next(v for v in guest.mitigations if v.mitigation.id == KPTI)
    assert (kpti.state, kpti.reason.split(" (")[0]) == ("enabled", "forced ON by KASLR")
    assert KPTI in guest.expected_log()[0]
    assert guest.vulnerabilities()["meltdown"] == "Not affected"


def test_every_field_of_the_board_comes_from_an_input_the_product_reads() -> None:
    """A field no input sets is a branch no guest takes: QEMU's dtb-randomness=off (no KASLR
    seed) is named by no input here, so the board has no such field; each field is set by a
    --guest-cmdline option."""
    command_line = "nokaslr kpti=0 mitigations=off nospectre_bhb"
    board = guest_board(command_line)
    changed = {name for name in fields(Board) if getattr(board, name) != getattr(QEMU_VIRT, name)}
    assert changed == set(fields(Board))


def test_nokaslr_leaves_kpti_to_csv3_and_e0pd_spares_it() -> None:
    assert state(view(NEOVERSE_N1_R4P1, N1_REGISTERS, guest_board("nokaslr")), KPTI) == (
        "not needed"
    )
    with_e0pd = {**N1_REGISTERS, "ID_AA64MMFR2_EL1": 1 << 60 | 0x1011}
    assert state(view(NEOVERSE_N1_R4P1, with_e0pd, QEMU_VIRT), KPTI) == "not needed"


def test_kpti_off_on_the_command_line_leaves_a_meltdown_affected_cpu_vulnerable() -> None:
    """kpti= is read before KASLR is considered (early_param parse_kpti)."""
    registers = {"ID_AA64PFR0_EL1": 0x11}
    on = view(CORTEX_A75_R3P0, registers, QEMU_VIRT)
    off = view(CORTEX_A75_R3P0, registers, guest_board("kpti=0"))
    assert (state(on, KPTI), on.vulnerabilities()["meltdown"]) == ("enabled", "Mitigation: PTI")
    assert (state(off, KPTI), off.vulnerabilities()["meltdown"]) == ("vulnerable", "Vulnerable")
    assert KPTI in off.expected_log()[0]


def test_firmware_not_avail_leaves_spectre_v2_and_bhb_vulnerable_but_logged() -> None:
    """proton-pack.c: has_spectre_v2() detects the capability unless firmware says unaffected;
    spectre_bhb_enable_mitigation() does nothing while Spectre-v2 is vulnerable."""
    guest = view(CORTEX_A72_R0P3, A72_REGISTERS, QEMU_VIRT)
    assert state(guest, "Spectre-v2") == "vulnerable"
    assert state(guest, "Spectre-BHB") == "vulnerable"
    assert {"Spectre-v2", "Spectre-BHB"} <= set(guest.expected_log()[0])
    assert guest.vulnerabilities()["spectre_v2"] == "Vulnerable"
    assert guest.vulnerabilities()["spec_store_bypass"] == "Vulnerable"


def test_a_neoverse_n1_guest_words_its_spectre_lines_as_the_kernel_does() -> None:
    guest = view(NEOVERSE_N1_R4P1, N1_REGISTERS, QEMU_VIRT)
    assert guest.vulnerabilities() == {
        "meltdown": "Not affected",
        "spec_store_bypass": "Mitigation: Speculative Store Bypass disabled via prctl",
        "spectre_v1": "Mitigation: __user pointer sanitization",
        "spectre_v2": "Mitigation: CSV2, BHB",
    }
    off = view(NEOVERSE_N1_R4P1, N1_REGISTERS, guest_board("nospectre_bhb"))
    assert off.vulnerabilities()["spectre_v2"] == "Mitigation: CSV2, but not BHB"


def test_without_the_firmware_answer_the_words_are_left_open() -> None:
    guest = view(CORTEX_A72_R0P3, {"ID_AA64PFR0_EL1": 0x1000000001000222}, QEMU_VIRT)
    assert guest.vulnerabilities()["spectre_v2"] is None


@pytest.mark.parametrize("word", ["console=ttyAMA0", "kpti=maybe", "mitigations=auto,nosmt"])
def test_a_command_line_option_not_modelled_is_refused_by_name(word: str) -> None:
    with pytest.raises(InputError, match=f"'{word}': not an option whose effect is modelled"):
        guest_board(f"nokaslr {word}")


def test_the_guest_words_table_is_read_strictly() -> None:
    document: dict[str, object] = {
        "table": {"format": "qemu-errata/guest-words/1"},
        "mitigation": [{"capability": "X", "mitigated_if": [], "offby": "x"}],
    }
    with pytest.raises(CatalogueError, match="key 'offby': not a key of this table"):
        guest_words_from(document, "guest-words.toml")
