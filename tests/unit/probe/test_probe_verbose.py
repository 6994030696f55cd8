"""``probe --verbose`` tells what was read and from where, on stderr; stdout stays the profile."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import run_cli

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.reports.probe import probe_narration, probe_written
from qemu_errata.testbed.sysfs_tree import write_cpu_identity

N1_MIDR = 0x414FD0C1


def test_a_sysfs_probe_names_its_tree_and_each_cpu_type(tmp_path: Path) -> None:
    for cpu in (0, 1):
        write_cpu_identity(tmp_path, cpu, N1_MIDR)
    write_cpu_identity(tmp_path, 2, None)
    done = run_cli(
        "probe", "--backend", "sysfs", "--sysfs-root", tmp_path, "--host", "h1", "--verbose"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["host"] == "h1"
    lines = done.stderr.splitlines()
    assert lines[0].startswith("qemu-errata probe: --backend sysfs, ")
    assert lines[0].endswith(" s, host name h1")
    assert lines[1:] == [
        f"qemu-errata probe: CPU types from {tmp_path}/devices/system/cpu:",
        "qemu-errata probe:   CPUs 0-1: Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1)",
        "qemu-errata probe:   CPU 2: no identity in sysfs (offline?): not in the profile",
    ]


def test_a_kvm_probe_tells_features_registers_and_masks() -> None:
    """Told from a real Linux 7.2 KVM probe (the embedded kvm-7.2-neoverse-n1 profile)."""
    lines = probe_narration(load_embedded_profile("kvm-7.2-neoverse-n1"), 0.25)
    assert lines[:6] == [
        "qemu-errata probe: --backend kvm, 0.25 s, host name neoverse-n1-linux-7.2",
        "qemu-errata probe: KVM of Linux 7.2.13+deb14-arm64: a scratch VM, one vCPU with "
        "psci-0.2, pmu-v3",
        lines[2],
        "qemu-errata probe: not offered by this KVM (0 in the profile): GMID_EL1, SMIDR_EL1, "
        "DCZID_EL0",
        "qemu-errata probe: read by this process at EL0 instead: DCZID_EL0",
        lines[5],
    ]
    assert lines[2].endswith(" read with KVM_GET_ONE_REG")
    assert lines[5].startswith("qemu-errata probe: writable masks of ")
    assert lines[-1] == "qemu-errata probe: timer frequency 62500000 Hz, from CNTFRQ_EL0"


def test_probe_o_says_what_a_kvm_and_a_qemu_probe_probed_and_where_it_went() -> None:
    """Told from real probes: Linux 7.2's KVM and QEMU's neoverse-n1 under TCG (embedded)."""
    kvm = load_embedded_profile("kvm-7.2-neoverse-n1")
    assert probe_written(kvm, "p.json") == (
        "Probed the KVM of Linux 7.2.13+deb14-arm64: profile of host neoverse-n1-linux-7.2 "
        "written to p.json."
    )
    qemu = load_embedded_profile("qemu-neoverse-n1")
    assert probe_written(qemu, "q.json") == (
        f"Probed CPU model neoverse-n1 of QEMU {qemu.provenance['qemu']}: profile of host "
        "qemu-neoverse-n1 written to q.json."
    )
