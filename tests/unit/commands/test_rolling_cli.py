"""A rolling kernel upgrade from the command line: mixed-kernel pools on QEMU 11.1, VMMs
that cannot write what a pool needs, and plan --kernel-upgrade / --previous.

Facts pinned: Debian's QEMU 11.1.3 has the CPU property kvm-psci-version and no SYSREG_*
or impl-cpu; Linux 6.12 offers PSCI 1.1, 7.2 and 7.3 offer 1.3 and accept 1.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import run_cli

N1 = [f"kvm-{k}-neoverse-n1" for k in ("6.12", "7.2", "7.3")]


@pytest.mark.parametrize("newer", ["kvm-7.2-neoverse-n1", "kvm-7.3-neoverse-n1"])
def test_6_12_and_newer_hosts_form_one_pool_on_qemu_11_1_and_render_pins_psci(
    tmp_path: Path, newer: str
) -> None:
    model = tmp_path / "pool.json"
    done = run_cli("baseline", "kvm-6.12-neoverse-n1", newer, "--vmm", "qemu-11.1", "-o", model)
    assert done.returncode == 0, done.stdout
    assert "Decided for the VMM qemu-11.1 (Debian QEMU 11.1.3" in done.stdout
    rendered = run_cli("render", model, "--vmm", "qemu-11.1")
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout.strip() == "-cpu host -global host-arm-cpu.kvm-psci-version=1.1"


def test_qemu_7_2_refuses_the_mixed_kernel_pool_naming_what_it_lacks() -> None:
    done = run_cli("baseline", *N1, "--vmm", "qemu-7.2")
    assert done.returncode == 1
    assert "qemu-7.2 cannot set it (no CPU property setting KVM_REG_ARM_PSCI_VERSION)" in (
        done.stdout
    )


def test_id_register_writes_are_refused_on_a_vmm_without_sysreg_properties(tmp_path: Path) -> None:
    done = run_cli("baseline", "kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76", "--vmm", "qemu-11.1")
    assert done.returncode == 1
    assert (
        "needs ID_AA64PFR1_EL1, ID_AA64MMFR0_EL1 written to present the pool's values, and "
        "qemu-11.1 (Debian QEMU 11.1.3 (trixie-backports, sid)) has no SYSREG_* CPU properties"
    ) in done.stdout
    model = tmp_path / "pool.json"
    assert (
        run_cli("baseline", "kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76", "-o", model).returncode
        == 0
    )
    check = run_cli("check", model, "kvm-6.12-neoverse-n1", "--vmm", "qemu-11.1", "--json")
    assert check.returncode == 1
    reasons = {p["reason"] for p in json.loads(check.stdout)["problems"]}
    assert reasons == {"vmm-cannot-set"}


def test_plan_kernel_upgrade_lists_the_hosts_that_change_pool(tmp_path: Path) -> None:
    done = run_cli(
        "plan",
        "kvm-6.12-neoverse-n1",
        "kvm-6.12-cortex-a72",
        "--vmm",
        "qemu-7.2",
        "--kernel-upgrade",
        "7.3",
        "--detail",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "Planned as if every host older than Linux 7.3 ran it."
    assert "  T1: 1 host neoverse-n1-linux-6.12: Arm Neoverse-N1 r4p1, Linux 7.3" in lines
    bad = run_cli("plan", "kvm-6.12-neoverse-n1", "--kernel-upgrade", "seven")
    assert (bad.returncode, bad.stderr) == (
        2,
        "qemu-errata: --kernel-upgrade seven: not a kernel version such as 7.3\n",
    )
