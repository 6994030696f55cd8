"""render --vmm qemu-tcg takes the CPU models this machine's QEMU emulates, as probe does."""

from __future__ import annotations

from pathlib import Path

from support.cli import run_cli


def test_a_cpu_model_qemu_lists_renders_though_no_probe_of_it_is_embedded(
    tmp_path: Path,
) -> None:
    """qemu-system-aarch64 -cpu help lists cortex-a53; no qemu-cortex-a53 profile is shipped."""
    model = tmp_path / "model.json"
    assert run_cli("baseline", "kvm-7.2-neoverse-n1", "-o", model).returncode == 0
    done = run_cli("render", model, "--vmm", "qemu-tcg", "--qemu-cpu", "cortex-a53")
    assert done.returncode == 0, done.stderr
    assert "cortex-a53" in done.stdout.split()
    assert "no probe of it is embedded to compare with the model's" in done.stderr


def test_a_cpu_model_no_qemu_has_is_still_refused(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    assert run_cli("baseline", "kvm-7.2-neoverse-n1", "-o", model).returncode == 0
    done = run_cli("render", model, "--vmm", "qemu-tcg", "--qemu-cpu", "cortex-z99")
    assert done.returncode == 2
    assert done.stderr.startswith("qemu-errata: CPU model 'cortex-z99': unknown")
