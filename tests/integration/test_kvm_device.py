"""The kvm probe and ``qemu-errata kvm-validate`` against this machine's /dev/kvm.

What they must do depends on the machine: an arm64 host with a usable
/dev/kvm (the product's platform) gets the kernel's verdict, any other host
one line naming /dev/kvm. The real arm64 kernels' verdicts are checked in
nested/test_nested_kvm.py.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
from pathlib import Path

import pytest
from support.cli import QEMU_ERRATA
from support.fake_kvm import CATALOGUE
from support.hosts import NEOVERSE_N1_MIDR

from qemu_errata.errors import ProbeError
from qemu_errata.probe.kvm import KVM_DEVICE, LinuxCalls, read_kvm

ARM64_KVM = platform.machine() == "aarch64" and os.access(KVM_DEVICE, os.R_OK | os.W_OK)


def kvm_validate(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``kvm-validate`` of a one-register model."""
    model = tmp_path / "model.json"
    model.write_text(
        json.dumps(
            {
                "format": "qemu-errata/pool-model/1",
                "target_implementations": [
                    {"midr": NEOVERSE_N1_MIDR, "revidr": "0x0", "aidr": "0x0"}
                ],
                "id_registers": {"ID_AA64ISAR0_EL1": "0x10000"},
            }
        )
    )
    return subprocess.run(
        [QEMU_ERRATA, "kvm-validate", str(model)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.skipif(ARM64_KVM, reason="this host has a usable arm64 KVM")
def test_on_a_host_without_arm64_kvm_it_says_so_in_one_line(tmp_path: Path) -> None:
    completed = kvm_validate(tmp_path)

    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.startswith("qemu-errata: /dev/kvm: ")
    assert len(completed.stderr.splitlines()) == 1


@pytest.mark.skipif(not ARM64_KVM, reason="needs a usable arm64 /dev/kvm")
def test_on_an_arm64_kvm_host_it_gives_the_kernels_verdict(tmp_path: Path) -> None:
    completed = kvm_validate(tmp_path)

    first, *refused = completed.stdout.splitlines()
    verdict = "accepts it: 1 of 1" if completed.returncode == 0 else "refuses it: 0 of 1"
    assert completed.returncode in (0, 1), completed.stderr
    assert first == (
        f"{tmp_path / 'model.json'}: KVM (Linux {platform.release()}) {verdict} registers written"
    )
    assert [line.split(":")[0].strip() for line in refused] == (
        [] if completed.returncode == 0 else ["ID_AA64ISAR0_EL1"]
    )


@pytest.mark.skipif(
    not os.path.exists(KVM_DEVICE) or platform.machine() == "aarch64",
    reason="needs the /dev/kvm of a host that is not arm64",
)
def test_real_kvm_of_another_architecture_is_refused_and_fds_closed() -> None:
    # Earlier tests' unreachable objects must not close their files during the call.
    gc.collect()
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(ProbeError, match=r"^/dev/kvm: not an arm64 KVM"):
        read_kvm(LinuxCalls(), CATALOGUE)
    assert set(os.listdir("/proc/self/fd")) == before
