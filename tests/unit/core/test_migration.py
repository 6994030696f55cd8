"""The one-way rules of a rolling kernel upgrade, judged on what a migrating VM carries.

Facts pinned: Linux 6.12 offers PSCI 1.1 (0x10001) and refuses a higher version in
KVM_SET_ONE_REG; 7.2 and 7.3 offer 1.3 (0x10003) and accept a lower one; a vCPU with a
PMU lists PMMIR_EL1 on 7.3.4 and not on 7.2.13 (nested hosts); QEMU, Debian's 11.1.3 too,
fails an incoming migration whose register list has a register the destination lacks.
"""

from __future__ import annotations

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.migration import arrival, carried_values
from qemu_errata.core.pool import PoolModel, Reason, baseline
from qemu_errata.core.record import replace
from qemu_errata.core.vmm_fit import check_with, first_run_problems
from qemu_errata.core.vmms import vmm_named

PSCI = "KVM_REG_ARM_PSCI_VERSION"


def host(kernel: str, cpu: str = "neoverse-n1"):  # type: ignore[no-untyped-def]
    return load_embedded_profile(f"kvm-{kernel}-{cpu}")


def own_pool(kernel: str) -> PoolModel:
    return baseline([host(kernel)])


def test_old_kernel_values_arrive_on_newer_kernels() -> None:
    for kernel in ("7.2", "7.3"):
        decision = arrival(own_pool("6.12"), host(kernel), vmm_named("qemu-7.2"), host("6.12"))
        assert decision.allowed, decision.problems


def test_psci_1_3_of_a_7_2_start_is_refused_on_6_12_naming_both_kernels_and_the_remedy() -> None:
    decision = arrival(own_pool("7.2"), host("6.12"), vmm_named("qemu-7.2"), host("7.2"))

    [problem] = decision.problems
    assert (problem.register, problem.reason) == (PSCI, "refused-on-arrival")
    assert problem.values == {"carried": "0x10003", "host": "0x10001"}
    assert "Linux 7.2" in problem.message
    assert "Linux 6.12" in problem.message
    assert "qemu-7.2 cannot pin it" in problem.message


def test_a_vmm_that_pins_psci_carries_the_model_value_whatever_the_start_host() -> None:
    model = own_pool("6.12")  # PSCI 1.1
    carried = carried_values(model, vmm_named("qemu-11.1"), host("7.2"), load_catalogue())
    assert carried.firmware_registers[PSCI] == 0x10001
    unpinned = carried_values(model, vmm_named("qemu-7.2"), host("7.2"), load_catalogue())
    assert unpinned.firmware_registers[PSCI] == 0x10003
    assert arrival(model, host("6.12"), vmm_named("qemu-11.1"), host("7.2")).allowed


def test_pmmir_of_a_7_3_start_fails_on_7_2_unless_the_vmm_tolerates_missing_registers() -> None:
    """Debian's QEMU 11.1.3 failed a real 7.3.4 -> 7.2.13 migration of a PMU vCPU in the CPU's
    post-load: PMMIR_EL1 is listed from 7.3 and the 11.1 row does not tolerate it."""
    model = own_pool("7.3")
    refused = arrival(model, host("7.2"), vmm_named("qemu-11.1"), host("7.3"))
    tolerant = replace(vmm_named("qemu-11.1"), tolerates_missing_registers=True)
    tolerated = arrival(model, host("7.2"), tolerant, host("7.3"))
    backwards = arrival(own_pool("7.2"), host("7.3"), vmm_named("qemu-7.2"), host("7.2"))

    assert [(p.register, p.reason) for p in refused.problems] == [("PMMIR_EL1", "register-list")]
    assert tolerated.allowed
    assert any("PMMIR_EL1" in note for note in tolerated.notes)
    assert backwards.allowed


def test_an_unknown_start_is_a_note_that_names_no_option_of_one_command() -> None:
    """The hook (and `hook check`) share this note with can-migrate: it names no --from."""
    unknown = arrival(own_pool("7.3"), host("7.2"), vmm_named("qemu-11.1"))
    [note] = [note for note in unknown.notes if "PMMIR_EL1" in note]
    assert note.endswith("which does not tolerate it (its start host is not known)")


def test_7_3_rewrites_s1pie_at_first_run_when_its_prerequisites_are_missing() -> None:
    profile = host("7.3")
    catalogue = load_catalogue()
    mmfr3 = catalogue["ID_AA64MMFR3_EL1"]
    values = dict(profile.id_registers)
    values["ID_AA64MMFR3_EL1"] = mmfr3.field("S1PIE").with_raw(0, 1)  # S1PIE without TCRX
    model = PoolModel(
        id_registers=values, target_implementations=own_pool("7.3").target_implementations
    )
    [problem] = first_run_problems(model, profile)
    on_7_2 = first_run_problems(model, host("7.2"))

    assert (problem.field, problem.reason) == ("S1PIE", "rewritten-at-first-run")
    assert "ID_AA64MMFR3_EL1 = 0x0" in problem.message
    assert "ID_AA64MMFR3_EL1.TCRX" in problem.message
    assert on_7_2 == []


def test_check_says_what_7_3_rewrites_at_the_first_run_with_the_resulting_value() -> None:
    # Linux 7.3 accepts ID_AA64MMFR3_EL1.S1PIE = 1 without TCRX, then clears it at KVM_RUN.
    mmfr3 = load_catalogue()["ID_AA64MMFR3_EL1"]
    model = own_pool("7.3")
    written = mmfr3.field("S1PIE").with_raw(model.id_registers["ID_AA64MMFR3_EL1"], 1)
    crafted = replace(model, id_registers={**model.id_registers, "ID_AA64MMFR3_EL1": written})
    result = check_with(crafted, host("7.3"), vmm_named("qemu-kvm"))
    rewritten = [p for p in result.problems if p.reason is Reason.REWRITTEN_AT_FIRST_RUN]
    assert [p.field for p in rewritten] == ["S1PIE"]
    assert "rewrites it at the vCPU's first run to NI (0x0)" in rewritten[0].message
