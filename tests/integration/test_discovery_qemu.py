"""render asks a real QEMU (7.2) for its property names.

QEMU 7.2 has neither series: every field the model sets and the target list
are reported missing, by name, and the QEMU we started is gone afterwards.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.cli import run_cli


def qemus_asked() -> int:
    found = subprocess.run(
        ["pgrep", "-f", "qemu-system-aarch64 -machine none"], capture_output=True, check=False
    )
    return len(found.stdout.split())


def test_qemu_binary_lacking_every_property_is_refused_with_the_list(tmp_path: Path) -> None:
    model = tmp_path / "n1-a76.json"
    made = run_cli("baseline", "kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76", "-o", model)
    assert made.returncode == 0, made.stderr
    before = qemus_asked()
    result = run_cli("render", model, "--vmm", "qemu-kvm", "--qemu-binary", "qemu-system-aarch64")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "qemu-errata: qemu-system-aarch64: qemu-kvm is not supported by this QEMU; missing: "
        "KVM (this QEMU runs without it); machine property virt-machine.impl-cpu; "
        "CPU type host-arm-cpu; CPU property host-arm-cpu.kvm-psci-version; "
        "a CPU property setting ID_AA64PFR1_EL1.SSBS; "
        "a CPU property setting ID_AA64MMFR0_EL1.PARANGE\n"
    )
    assert qemus_asked() == before


def test_render_names_the_v10_properties_by_default_and_v3_on_request(tmp_path: Path) -> None:
    model = tmp_path / "n1-a76.json"
    run_cli("baseline", "kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76", "-o", model)
    v10 = run_cli("render", model, "--vmm", "qemu-kvm")
    v3 = run_cli("render", model, "--vmm", "qemu-kvm", "--qemu-series", "v3")
    assert "host-arm-cpu.SYSREG_ID_AA64MMFR0_EL1_PARange=0x2" in v10.stdout.split()
    assert "host-arm-cpu.SYSREG_ID_AA64MMFR0_EL1_PARANGE=0x2" in v3.stdout.split()
