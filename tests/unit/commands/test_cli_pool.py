"""The installed ``qemu-errata`` command: baseline and check, exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.cli import run_cli
from support.hosts import (
    CORTEX_A57_MIDR,
    CORTEX_A57_REGISTERS,
    NEOVERSE_N1_MIDR,
    NEOVERSE_N1_REGISTERS,
    all_fields_writable,
    profile_json,
)

from qemu_errata.testbed.sysfs_tree import write_cpu_identity


def two_profiles(write_json: Callable[[str, Any], Path], a57_masks: Any = "all") -> list[Path]:
    n1 = profile_json(
        "n1", NEOVERSE_N1_MIDR, NEOVERSE_N1_REGISTERS, all_fields_writable(NEOVERSE_N1_REGISTERS)
    )
    masks = all_fields_writable(CORTEX_A57_REGISTERS) if a57_masks == "all" else a57_masks
    a57 = profile_json("a57", CORTEX_A57_MIDR, CORTEX_A57_REGISTERS, masks)
    return [write_json("n1.json", n1), write_json("a57.json", a57)]


def test_baseline_writes_the_model_and_explains_it(
    write_json: Callable[[str, Any], Path], tmp_path: Path
) -> None:
    model_path = tmp_path / "model.json"
    result = run_cli("baseline", *two_profiles(write_json), "-o", model_path)
    assert result.returncode == 0, result.stderr
    assert "Pool of 2 hosts: n1, a57" in result.stdout
    assert "Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1), REVIDR 0x0, AIDR 0x0" in result.stdout
    assert "ID_AA64ISAR0_EL1.ATOMIC: the pool presents NI (0x0); n1 has IMP (0x2)" in result.stdout
    model = json.loads(model_path.read_text())
    assert model["format"] == "qemu-errata/pool-model/1"
    assert model["target_implementations"] == [
        {"midr": "0x411fd070", "revidr": "0x0", "aidr": "0x0"},
        {"midr": "0x414fd0c1", "revidr": "0x0", "aidr": "0x0"},
    ]


def test_baseline_json_holds_the_model(write_json: Callable[[str, Any], Path]) -> None:
    result = run_cli("baseline", "--json", *two_profiles(write_json))
    assert result.returncode == 0
    printed = json.loads(result.stdout)
    assert printed["format"] == "qemu-errata/baseline/1"
    assert printed["model"]["format"] == "qemu-errata/pool-model/1"
    assert printed["model"]["id_registers"]["ID_AA64ISAR0_EL1"] == "0x11120"


def test_refused_pool_exits_1_with_every_reason(write_json: Callable[[str, Any], Path]) -> None:
    result = run_cli("baseline", *two_profiles(write_json, a57_masks=None))
    assert result.returncode == 1
    assert "The pool of n1, a57 is refused:" in result.stdout
    assert "ID_AA64PFR0_EL1.EL1 differs and no value is presentable on every host" in result.stdout
    refused = run_cli("baseline", "--json", *two_profiles(write_json, a57_masks=None))
    assert len(json.loads(refused.stdout)["blockers"]) == 4


def test_malformed_profile_exits_2_with_one_line(write_json: Callable[[str, Any], Path]) -> None:
    good = two_profiles(write_json)[0]
    bad = write_json("bad.json", {"format": "qemu-errata/host-profile/1", "host": "x"})
    result = run_cli("baseline", good, bad)
    assert result.returncode == 2
    assert result.stderr == (
        f"qemu-errata: {bad}: implementations: missing or not a list of objects\n"
    )
    assert result.stdout == ""


def test_check_answers_whether_a_host_can_join(
    write_json: Callable[[str, Any], Path], tmp_path: Path
) -> None:
    n1_path, a57_path = two_profiles(write_json)
    model_path = tmp_path / "n1-only.json"
    assert run_cli("baseline", n1_path, "-o", model_path).returncode == 0
    joined = run_cli("check", model_path, n1_path)
    assert joined.returncode == 0
    assert joined.stdout.splitlines()[-1] == "Host n1 can present the pool model."
    refused = run_cli("check", "--json", model_path, a57_path)
    assert refused.returncode == 1
    verdict = json.loads(refused.stdout)
    assert verdict["ok"] is False
    assert any("Arm Cortex-A57 r1p0 (MIDR 0x411fd070)" in p["message"] for p in verdict["problems"])


def test_usage_errors_exit_2() -> None:
    assert run_cli("baseline").returncode == 2
    assert run_cli("frobnicate").returncode == 2


def test_module_entry_point_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "qemu_errata", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "baseline" in result.stdout


def test_a_sysfs_profile_refused_by_baseline_is_remedied_by_a_kvm_probe(tmp_path: Path) -> None:
    """A sysfs probe reads MIDR_EL1 and REVIDR_EL1 only (devices/system/cpu/cpuN/regs/
    identification): no ID registers, so no pairing of host types is the remedy."""
    write_cpu_identity(tmp_path / "sys", 0, int(NEOVERSE_N1_MIDR, 16))
    profile = tmp_path / "sh1.json"
    probed = run_cli(
        "probe",
        "--backend",
        "sysfs",
        "--sysfs-root",
        tmp_path / "sys",
        "--host",
        "sh1",
        "-o",
        profile,
    )
    assert probed.returncode == 0, probed.stderr
    result = run_cli("baseline", profile, "kvm-6.12-neoverse-n1")
    assert result.returncode == 1
    assert "form a pool" not in result.stdout
    assert result.stdout.splitlines()[-1] == (
        "A sysfs profile has no ID registers to pool: probe sh1 on the host with the kvm "
        "backend (`qemu-errata probe -o FILE`) and use that profile."
    )
