"""What a refusal on a nested host tells the operator to do instead."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.cli import QEMU_ERRATA, run_cli


def test_a_pool_of_6_12_profiles_on_a_7_2_host_names_the_7_2_profiles(tmp_path: Path) -> None:
    """Linux 7.2's KVM offers PSCI 1.3 (0x10003) where 6.12's offered 1.1: a 6.12 pool
    cannot be presented there, and the same CPU models' 7.2 profiles are embedded."""
    pool = tmp_path / "pool.json"
    made = run_cli("baseline", "kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76", "-o", pool)
    assert made.returncode == 0, made.stderr
    nested = [QEMU_ERRATA, "nested", "--kernel", "7.2", "--cpu", "neoverse-n1"]
    done = subprocess.run(
        [*nested, "--", "guest-view", pool.name],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    refusal = done.stderr.splitlines()[0]
    assert refusal.startswith("qemu-errata: pool.json: host neoverse-n1-linux-7.2 cannot present")
    assert refusal.endswith(
        "(the pool is of embedded profiles of another kernel than this host's Linux "
        "7.2.13+deb14-arm64: `qemu-errata baseline kvm-7.2-neoverse-n1 kvm-7.2-cortex-a76` "
        "computes one for it)"
    )
