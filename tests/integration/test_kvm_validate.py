"""``qemu-errata kvm-validate`` on this machine; its real-kernel runs are in test_nested_kvm.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NEOVERSE_N1_MIDR

QEMU_ERRATA = str(Path(sys.executable).with_name("qemu-errata"))


@pytest.mark.integration
def test_on_a_host_without_arm64_kvm_it_says_so_in_one_line(tmp_path: Path) -> None:
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
    completed = subprocess.run(
        [QEMU_ERRATA, "kvm-validate", str(model)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.startswith("qemu-errata: /dev/kvm: ")
    assert len(completed.stderr.splitlines()) == 1
