"""verify compares every field the model sets, or says it did not."""

from __future__ import annotations

from support.schemas import SCHEMAS, validate

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import PoolModel, baseline
from qemu_errata.reports.verify import WIDTH, describe_verify, verify_json
from qemu_errata.vmm.verify import (
    DIFFERENCE_REASONS,
    KEPT_FROM_HOST,
    NONE_UNDER_TCG,
    GuestCpu,
    GuestRegisters,
    GuestState,
    Unchecked,
    compare,
    condition_differences,
    registers_from_profile,
)

N1 = 0x414FD0C1
CPU0 = (GuestCpu(0, "/machine/unattached/device[0]", N1),)


def n1_a76_model() -> PoolModel:
    return baseline([load_embedded_profile(f"kvm-7.2-{m}") for m in ("neoverse-n1", "cortex-a76")])


def kvm_n1_registers() -> GuestRegisters:
    catalogue = load_catalogue()
    return registers_from_profile(load_embedded_profile("kvm-7.2-neoverse-n1"), catalogue, "n1", {})


def test_a_plain_n1_differs_from_the_n1_a76_model_in_ssbs_and_parange_by_name() -> None:
    """Fields spelt as the catalogue (and baseline) spell them: PARANGE, not QEMU v10's PARange."""
    guest = GuestState(False, CPU0, None, kvm_n1_registers(), 62_500_000)
    report = compare(n1_a76_model(), guest)
    assert tuple(d.message for d in report.differences) == (
        "ID_AA64PFR1_EL1.SSBS: the model sets IMP (0x1), the guest has SSBS2 (0x2)",
        "ID_AA64MMFR0_EL1.PARANGE: the model sets '40' (0x2), the guest has '48' (0x5)",
    )
    assert not report.ok
    document = verify_json(report)
    validate(document, "verify")
    assert document["format"] == "qemu-errata/verify/1"
    assert document["differences"][0] == {
        "register": "ID_AA64PFR1_EL1",
        "field": "SSBS",
        "reason": "field-differs",
        "values": {"model": "0x1", "guest": "0x2"},
        "message": "ID_AA64PFR1_EL1.SSBS: the model sets IMP (0x1), the guest has SSBS2 (0x2)",
    }


def equal_where_compared(model: PoolModel) -> GuestRegisters:
    """QEMU's Neoverse-N1 under KVM with the model's losses applied: every field equal."""
    fields = dict(kvm_n1_registers().fields)
    for loss in model.losses:
        fields[loss.field.qualified_name] = loss.pool_value
    return GuestRegisters("test", fields, {})


def psci(version: int | str) -> GuestRegisters:
    """What the vCPU's kvm-psci-version shows: the PSCI version's field, or why not."""
    name = "KVM_REG_ARM_PSCI_VERSION.Version"
    if isinstance(version, str):
        return GuestRegisters("kvm-psci-version", {}, {name: version})
    return GuestRegisters("kvm-psci-version", {name: version}, {})


def test_a_tcg_guest_equal_to_the_model_is_vouched_for_without_kvm_firmware_or_vgic() -> None:
    """Firmware pseudo-registers and the vGIC are KVM's: a TCG guest has none, so they are
    listed as not the VMM's, not held against it (they kept every guest from a verdict)."""
    model = n1_a76_model()
    guest = GuestState(False, CPU0, None, equal_where_compared(model), 62_500_000)
    report = compare(model, guest)
    assert (report.differences, report.not_checked) == ((), ())
    assert report.ok
    names = (*model.firmware_registers, *model.gic_registers)
    assert report.not_set == (Unchecked(NONE_UNDER_TCG, names),)
    document = verify_json(report)
    validate(document, "verify")
    assert document["not_set_by_vmm"] == [{"reason": NONE_UNDER_TCG, "names": list(names)}]
    lines = describe_verify(report).splitlines()
    assert "Not the VMM's to set (not held against the guest):" in lines
    assert lines[-1] == (
        f"The guest presents the pool model: {report.compared_fields} register fields "
        f"compared, with the MIDR of each vCPU and the target list, all equal; {len(names)} "
        "items no VMM sets are listed above."
    )


def test_a_kvm_guest_has_its_psci_version_compared_and_its_hosts_other_registers_listed() -> None:
    """QEMU 11.1 sets and shows the PSCI version (kvm-psci-version); the SMCCC workaround
    states, the service bitmaps, ICC_CTLR_EL1 and the timer stay the start host's: listed,
    and a guest equal in all the VMM sets is vouched for."""
    model = n1_a76_model()
    assert model.firmware_registers["KVM_REG_ARM_PSCI_VERSION"] == 0x10003  # Linux 7.2's
    registers = equal_where_compared(model)
    targets = [
        {"midr": t.midr, "revidr": t.revidr, "aidr": t.aidr} for t in model.target_implementations
    ]

    def kvm_guest(firmware: GuestRegisters | None) -> GuestState:
        return GuestState(True, CPU0, targets, registers, None, firmware)

    without = compare(model, kvm_guest(None))
    report = compare(model, kvm_guest(psci(0x10003)))
    assert (report.differences, report.not_checked) == ((), ())
    assert report.ok
    assert report.compared_fields == without.compared_fields + 1
    kept = [n for n in (*model.firmware_registers, *model.gic_registers) if "PSCI" not in n]
    timer = f"the timer frequency ({model.timer_frequency_hz} Hz)"
    assert report.not_set == (Unchecked(KEPT_FROM_HOST, (*kept, timer)),)
    assert without.not_set == (
        Unchecked(KEPT_FROM_HOST, ("KVM_REG_ARM_PSCI_VERSION", *kept, timer)),
    )

    lower = compare(model, kvm_guest(psci(0x10001)))
    assert [d.message for d in lower.differences] == [
        "KVM_REG_ARM_PSCI_VERSION.Version: the model sets '1.3' (0x10003), "
        "the guest has '1.1' (0x10001)"
    ]
    assert not lower.ok
    unnamed = compare(model, kvm_guest(psci("reads 'x'")))
    assert unnamed.not_checked == (Unchecked("reads 'x'", ("KVM_REG_ARM_PSCI_VERSION.Version",)),)
    assert not unnamed.ok


def test_a_kvm_guest_without_sysreg_properties_has_every_register_unchecked() -> None:
    model = n1_a76_model()
    reason = "no SYSREG properties"
    report = compare(model, GuestState(True, CPU0, None, reason))
    assert report.compared_fields == 0
    assert report.not_checked[0] == Unchecked(reason, tuple(model.id_registers))


def test_fields_a_source_cannot_vouch_for_are_unchecked_not_equal() -> None:
    model = n1_a76_model()
    registers = kvm_n1_registers()
    unknown = condition_differences(
        {"gic-version": "2", "has_el2": False, "has_el3": False, "pmu": True}
    )
    guest = GuestState(False, CPU0, None, GuestRegisters("n1", registers.fields, unknown))
    report = compare(model, guest)
    assert (
        Unchecked(
            "the guest's gic-version is '2', the probe's was '3'",
            ("ID_PFR1_EL1.GIC", "ID_AA64PFR0_EL1.GIC"),
        )
        in report.not_checked
    )


def test_a_timer_running_at_another_frequency_is_a_difference() -> None:
    guest = GuestState(False, CPU0, None, kvm_n1_registers(), 1_000_000_000)
    report = compare(n1_a76_model(), guest)
    assert (
        "timer frequency: the model has 62500000 Hz, the guest's counter runs at 1000000000 Hz"
        in [d.message for d in report.differences]
    )


def test_the_schema_knows_every_difference_reason_and_no_other() -> None:
    enum = SCHEMAS["verify"]["$defs"]["difference"]["properties"]["reason"]["enum"]
    assert sorted(enum) == sorted(DIFFERENCE_REASONS)


def test_the_text_ends_with_one_verdict_that_agrees_with_the_exit_status() -> None:
    model = n1_a76_model()
    differs = compare(model, GuestState(False, CPU0, None, kvm_n1_registers(), 62_500_000))
    assert describe_verify(differs).splitlines()[-1] == (
        "The guest differs from the pool model: 2 differences (above); "
        f"{differs.compared_fields} register fields compared."
    )
    one_host = baseline([load_embedded_profile("kvm-7.2-neoverse-n1")])
    unchecked = compare(one_host, GuestState(True, CPU0, None, "no SYSREG properties"))
    assert not unchecked.ok
    assert (
        describe_verify(unchecked)
        .splitlines()[-1]
        .startswith("Not vouched for: 0 register fields compared equal, but ")
    )


def test_fields_not_checked_are_grouped_by_register_and_wrapped() -> None:
    model = n1_a76_model()
    report = compare(model, GuestState(False, CPU0, None, GuestRegisters("gdb", {}, {})))
    lines = describe_verify(report).splitlines()
    assert "  gdb does not give them:" in lines
    assert all(len(line) <= WIDTH for line in lines if line.startswith("    "))
    text = "\n".join(lines)
    # Every field of ID_PFR0_EL1 is missing: the register is named once, its fields not.
    assert "    ID_PFR0_EL1; ID_PFR1_EL1;" in lines[2]
    assert "RAS" not in lines[2]
    assert "ID_AA64PFR0_EL1.EL1" not in text
