"""verify against a real QEMU 7.2 TCG guest compares its registers.

Guests stay paused (-S): verify reads them over QMP and never resumes or pauses them.
"""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import run_cli
from support.qemu import paused_qemu
from support.schemas import validate

from qemu_errata.vmm.verify import NONE_UNDER_TCG


def model(directory: Path, *profiles: str) -> Path:
    path = directory / "model.json"
    made = run_cli("baseline", *profiles, "-o", path)
    assert made.returncode == 0, made.stderr
    return path


def test_plain_n1_guest_is_not_vouched_for_against_an_n1_a76_model(tmp_path: Path) -> None:
    n1_a76 = model(tmp_path, "kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76")
    with paused_qemu(tmp_path, ["-cpu", "neoverse-n1"]) as socket:
        text = run_cli("verify", n1_a76, "--qmp", socket)
        as_json = run_cli("verify", n1_a76, "--qmp", socket, "--json")
    assert text.returncode == 1, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "Differences from the pool model:"
    assert "  ID_AA64PFR1_EL1.SSBS: the model sets IMP (0x1), the guest has SSBS2 (0x2)" in lines
    assert (
        "  ID_AA64MMFR0_EL1.PARANGE: the model sets '40' (0x2), the guest has '48' (0x5)" in lines
    )
    assert "Not checked:" in lines
    report = json.loads(as_json.stdout)
    assert as_json.returncode == 1
    assert report["ok"] is False
    validate(report, "verify")
    assert {d["reason"] for d in report["differences"]} == {"field-differs"}
    # A TCG guest has no KVM firmware registers: listed as no VMM's to set.
    assert any("KVM_REG_ARM_PSCI_VERSION" in group["names"] for group in report["not_set_by_vmm"])


def test_a_guest_equal_where_compared_is_still_not_vouched_for_when_some_is_unchecked(
    tmp_path: Path,
) -> None:
    n1 = model(tmp_path, "qemu-neoverse-n1")
    with paused_qemu(tmp_path, ["-cpu", "neoverse-n1"]) as socket:
        result = run_cli("verify", n1, "--qmp", socket)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("Not vouched for: ")
    # -M virt gives GICv2; the probe ran with GICv3, so the GIC fields are not vouched for.
    assert "  the guest's gic-version is '2', the probe's was '3':" in lines
    assert "    ID_PFR1_EL1: GIC; ID_AA64PFR0_EL1: GIC" in lines
    assert lines[lines.index(f"  {NONE_UNDER_TCG}:") + 1].endswith("ICC_CTLR_EL1")
