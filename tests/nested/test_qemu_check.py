"""Debian's QEMU 11.1.3 under real KVM: the nested Linux 7.2 host runs ``qemu-check``.

Three boots of a nested neoverse-n1 host on Linux 7.2 with the QEMU layer
(about 8 s each once the image and the layer are cached; the layer's first
build downloads some 38 MB from Debian unstable):

- a pool of one host type (the embedded kvm-7.2-neoverse-n1 profile): the
  QEMU is found to lack every SYSREG property and impl-cpu, the model needs
  none of them, a ``-accel kvm -cpu host`` VM starts with exactly the
  arguments ``render`` gives and its kernel runs on the host's MIDR, and
  verify lists what it could not compare (the registers: no SYSREG
  properties; the MIDR: QMP reads 0 under KVM), compares nothing it cannot,
  and vouches for nothing (exit 1);
- a pool of two host types (neoverse-n1 and cortex-a76): no VM is started,
  and the report names exactly what the model needs and this QEMU lacks;
- a pool of the 6.12 and 7.2 neoverse-n1 made for QEMU 11.1: its PSCI version is
  pinned to 6.12's 1.1 with kvm-psci-version, and the VM runs on Linux 7.2.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

from support.cli import QEMU_ERRATA, run_cli
from support.schemas import validate

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.vmm.qemu_check import VM_ARGUMENTS, sysreg_offer

NESTED = (QEMU_ERRATA, "nested", "--kernel", "7.2", "--cpu", "neoverse-n1", "--timeout", "600")
NEOVERSE_N1_R4P1 = "0x414fd0c1"


def qemu_check(model: Path) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [*NESTED, "--", "qemu-check", str(model), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def model_of(tmp_path: Path, *profiles: str) -> Path:
    path = tmp_path / "model.json"
    made = run_cli("baseline", *profiles, "-o", path)
    assert made.returncode == 0, made.stderr
    return path


def test_a_kvm_vm_runs_with_the_rendered_arguments_and_verify_says_what_it_cannot_compare(
    tmp_path: Path,
) -> None:
    model = model_of(tmp_path, "kvm-7.2-neoverse-n1")
    rendered = run_cli("render", model, "--vmm", "qemu-kvm")
    assert rendered.returncode == 0, rendered.stderr
    status, report, stderr = qemu_check(model)
    assert status == 1, stderr
    validate(report, "qemu-check")
    assert report["qemu"] == "11.1.3 (Debian 1:11.1.3+ds-1)"
    assert report["kvm"] is True
    lacking = sysreg_offer(frozenset(), load_catalogue()).lacking
    assert report["sysreg"] == {"offered": [], "lacking": list(lacking)}
    assert report["impl_cpu"] is False
    assert report["model_needs"] == []
    vm = report["vm"]
    assert vm["arguments"] == [*VM_ARGUMENTS, *shlex.split(rendered.stdout)]
    # QEMU 11.1.3 offers kvm-psci-version: the VM carries the model's PSCI version, 1.3.
    assert vm["arguments"][-4:] == ["-cpu", "host", "-global", "host-arm-cpu.kvm-psci-version=1.3"]
    assert vm["ran"] is True, vm["problem"]
    assert vm["console_midr"] == NEOVERSE_N1_R4P1
    verify = report["verify"]
    assert verify["ok"] is False
    assert verify["differences"] == []
    assert verify["compared_fields"] == 1  # the PSCI version, read back from kvm-psci-version
    reasons = {group["reason"]: group["names"] for group in verify["not_checked"]}
    model_registers = json.loads(model.read_text())["id_registers"]
    registers = next(names for reason, names in reasons.items() if "no SYSREG" in reason)
    assert registers == list(model_registers)
    assert any("MIDR reads 0 under KVM" in reason for reason in reasons)
    # The PSCI version is compared (kvm-psci-version); the host's other firmware registers,
    # its vGIC and its timer are no VMM's to set.
    assert "KVM_REG_ARM_PSCI_VERSION.Version" not in str(verify["not_checked"])
    kept = {group["reason"]: group["names"] for group in verify["not_set_by_vmm"]}
    assert any("the timer frequency" in name for names in kept.values() for name in names)
    assert "KVM_REG_ARM_PSCI_VERSION" not in str(kept)
    assert "no target implementation list" in verify["notes"][0]
    assert "QEMU 1:11.1.3+ds-1 (layer " in stderr


def test_a_mixed_kernel_pool_pins_psci_1_1_and_its_vm_runs_on_linux_7_2(tmp_path: Path) -> None:
    """Linux 7.2 accepts a PSCI version lower than its own 1.3 (KVM_SET_ONE_REG), and Debian's
    QEMU 11.1.3 sets it from kvm-psci-version: the VM of a 6.12 + 7.2 pool runs there."""
    model = tmp_path / "model.json"
    profiles = ("kvm-6.12-neoverse-n1", "kvm-7.2-neoverse-n1")
    made = run_cli("baseline", *profiles, "--vmm", "qemu-11.1", "-o", model)
    assert made.returncode == 0, made.stdout
    status, report, stderr = qemu_check(model)
    vm = report["vm"]
    assert report["model_needs"] == [], stderr
    assert vm["arguments"][-2:] == ["-global", "host-arm-cpu.kvm-psci-version=1.1"]
    assert vm["ran"] is True, vm["problem"]
    assert vm["console_midr"] == NEOVERSE_N1_R4P1
    assert status == 1  # verify still vouches for nothing: no SYSREG properties to read back


def test_a_pool_needing_properties_is_not_started_and_what_it_lacks_is_named(
    tmp_path: Path,
) -> None:
    model = model_of(tmp_path, "kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76")
    status, report, stderr = qemu_check(model)
    assert status == 1, stderr
    assert report["model_needs"] == [
        "machine property virt-machine.impl-cpu",
        "a CPU property setting ID_AA64PFR1_EL1.SSBS",
        "a CPU property setting ID_AA64MMFR0_EL1.PARANGE",
    ]
    assert report["vm"] == {
        "arguments": [],
        "ran": False,
        "console": None,
        "console_midr": None,
        "problem": None,
    }
    assert report["verify"] is None
