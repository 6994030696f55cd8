"""``qemu-errata demo`` end to end: real QEMU probes, real libvirt hosts, the real hook."""

from __future__ import annotations

import subprocess

import pytest
from support.cli import QEMU_ERRATA

# The test bed creates system users.
pytestmark = pytest.mark.root


def test_demo_runs_every_step_and_leaves_nothing_behind() -> None:
    result = subprocess.run(
        [QEMU_ERRATA, "demo"], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # It says what it does not show, and that it leaves its system users behind.
    assert "a TCG\nguest cannot be given the lowered fields nor the target list" in out
    assert "system user qe-tb-N, created on first use and left in place" in out
    assert "the pool loses 2 fields:" in out
    assert "[6/6] Migrate the VM host-a -> host-b (in the pool), then to host-c (outside)" in out
    assert "FAILED" not in out
    assert "ok: host-a -> host-b succeeded: the VM runs on host-b" in out
    assert (
        "libvirt said: qemu-errata: refused the incoming migration of VM 'demo-vm': "
        "this host's CPU 0 is Fujitsu A64FX r1p0 (MIDR 0x461f0010)"
    ) in out
    assert "ok: the VM is still running on host-b, and not on host-c" in out
    assert out.rstrip().endswith("every expectation held.")
    assert result.stderr == ""
    leftovers = subprocess.run(
        ["pgrep", "-u", "qe-tb-0,qe-tb-1,qe-tb-2"], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout == ""
