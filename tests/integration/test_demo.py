"""``qemu-errata demo`` end to end: real QEMU probes, real libvirt hosts, the real hook."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.cli import QEMU_ERRATA

from qemu_errata.nested.image import CACHE_ENVIRONMENT, KERNELS, cached_image

# The test bed creates system users.
pytestmark = pytest.mark.root
GUEST_STEP = "[4/7] Boot a Linux 7.2 guest of the pool under real KVM: what does it enable"


def run_demo(**environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [QEMU_ERRATA, "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **environment},
    )


def test_demo_runs_every_step_and_leaves_nothing_behind() -> None:
    result = run_demo()
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # It says what it does not show, and that it leaves its system users behind.
    assert "a TCG\nguest cannot be given the lowered fields nor the target list" in out
    assert "system user qe-tb-N, created on first use and left in place" in out
    assert "the pool loses 2 fields:" in out
    assert "[7/7] Migrate the VM host-a -> host-b (in the pool), then to host-c (outside)" in out
    assert "FAILED" not in out
    assert "ok: host-a -> host-b succeeded: the VM runs on host-b" in out
    assert (
        "libvirt said: qemu-errata: refused the incoming migration of VM 'demo-vm': "
        "this host's CPU 0 is Fujitsu A64FX r1p0 (MIDR 0x461f0010)"
    ) in out
    assert "ok: the VM is still running on host-b, and not on host-c" in out
    assert out.rstrip().endswith("every expectation held.")
    # Nothing on stderr but the nested runner's progress (the first guest step on a machine
    # fetches the guest's pinned busybox and says so).
    assert [
        line for line in result.stderr.splitlines() if not line.startswith("qemu-errata nested: ")
    ] == []
    leftovers = subprocess.run(
        ["pgrep", "-u", "qe-tb-0,qe-tb-1,qe-tb-2"], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout == ""
    if cached_image(KERNELS["7.2"]) is None:
        assert f"{GUEST_STEP}: skipped: no nested Linux 7.2 KVM host image is cached" in out
        return
    # A real Linux 7.2 guest of the pool, under real KVM on a nested neoverse-n1 host.
    assert f"{GUEST_STEP} ..." in out
    # Its list names a Cortex-A53 r0p4 too: Linux >= 6.15 matches the Spectre-v4 and
    # Spectre-BHB safe lists against ANY listed CPU (is_midr_in_range_list()), so the
    # guest on the Neoverse-N1 skips both, as the hazards said before it booted.
    assert (
        "HAZARD: Spectre-BHB LOST on Arm Cortex-A76 r4p1, Arm Neoverse-N1 r4p1: Arm Cortex-A53 "
        "r0p4 is on the kernel's safe list (Linux 7.2, 7.3 guests skip it on every host)"
    ) in out
    assert "guest: smccc: KVM: Number of target implementation CPUs is 3" in out
    assert "ok: the guest asked for the pool's 3 target implementations and got them" in out
    assert (
        "ok: the guest on the neoverse-n1 host did not enable Spectre-v4, Spectre-BHB: LOST there"
    ) in out
    assert "ok: the ID registers the guest read are the model's" in out
    # Neoverse-N1 and Cortex-A76 file ARM64_ERRATUM_4118414 as their erratum 4193800.
    assert "        Broken broadcast TLBI completion (ARM erratum 4193800)\n" in out
    assert (
        "ok: what it enabled is what `qemu-errata errata --guest-kernel 7.2.13` predicts "
        "(5 workarounds)"
    ) in out
    # QEMU's board gives the guest a KASLR seed: without E0PD, KPTI is forced on (the fifth).
    assert "        Kernel page table isolation (KPTI)\n" in out
    # The hazard in the guest's own words: with the A53 listed, the N1 guest believes itself
    # safe from Spectre-v2/BHB (alone it prints "Mitigation: CSV2, BHB").
    assert (
        "what it printed in /sys/devices/system/cpu/vulnerabilities/spectre_v2: Not affected "
        "(on a neoverse-n1 host, its guests having lost Spectre-v4, Spectre-BHB)"
    ) in out
    assert "ok: The guest agrees with the errata prediction for Linux 7.2.13: " in out


def test_demo_without_a_cached_guest_image_says_why_it_skips_that_step_and_builds_none(
    tmp_path: Path,
) -> None:
    result = run_demo(**{CACHE_ENVIRONMENT: str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"{GUEST_STEP}: skipped: no nested Linux 7.2 KVM host image is cached in {tmp_path}, "
        "and the demo downloads none: `qemu-errata nested --rebuild --kernel 7.2` builds one "
        "(a Linux 7.2 image took 9 s to build on a 2-core machine)\n"
    ) in result.stdout
    assert "[5/7] Start the test bed" in result.stdout
    assert result.stdout.rstrip().endswith("every expectation held.")
    assert list(tmp_path.iterdir()) == []
