"""The sysfs backend on sysfs trees written by the tests (what Linux publishes per CPU)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.cli import run_cli

from qemu_errata.commands.probe import probe
from qemu_errata.errors import InputError, ProbeError
from qemu_errata.probe.sysfs import probe_sysfs, read_implementations
from qemu_errata.testbed.sysfs_tree import write_cpu_identity

A55 = 0x412FD050  # Cortex-A55 r2p0, the LITTLE cores
A76 = 0x414FD0B1  # Cortex-A76 r4p1, the big cores

# `qemu-errata probe` of a sysfs tree, its root to follow.
SYSFS_PROBE = ("probe", "--backend", "sysfs", "--sysfs-root")


def write_cpu(root: Path, number: int, midr: int | None, revidr: int = 0) -> None:
    """An online CPU of ``midr``, or (None) an offline one: it has no regs/identification."""
    write_cpu_identity(root, number, midr, revidr)


@pytest.fixture
def big_little(tmp_path: Path) -> Path:
    """A big.LITTLE host: CPUs 0-3 A55, 4-5 A76, 6-7 A76 with an erratum fixed in REVIDR."""
    for number in range(4):
        write_cpu(tmp_path, number, A55)
    for number in (4, 5):
        write_cpu(tmp_path, number, A76)
    for number in (6, 7):
        write_cpu(tmp_path, number, A76, revidr=0x100)
    (tmp_path / "devices/system/cpu/cpufreq").mkdir()  # not a CPU: ignored
    (tmp_path / "devices/system/cpu/possible").write_text("0-7\n")
    return tmp_path


def test_cpus_are_grouped_by_midr_and_revidr(big_little: Path) -> None:
    implementations, unidentified = read_implementations(big_little)
    assert [(i.midr, i.revidr, i.aidr, i.cpus) for i in implementations] == [
        (A55, 0, None, (0, 1, 2, 3)),
        (A76, 0, None, (4, 5)),
        (A76, 0x100, None, (6, 7)),
    ]
    assert unidentified == ()


def test_cpus_are_ordered_numerically_and_offline_ones_listed(tmp_path: Path) -> None:
    for number in (10, 2, 1):
        write_cpu(tmp_path, number, A76)
    write_cpu(tmp_path, 3, None)
    implementations, unidentified = read_implementations(tmp_path)
    assert implementations[0].cpus == (1, 2, 10)
    assert unidentified == (3,)


def test_profile_has_implementations_only(big_little: Path) -> None:
    profile = probe_sysfs(big_little, host="phone-7")
    data = profile.to_json()
    assert data["host"] == "phone-7"
    assert data["implementations"][1] == {
        "midr": "0x414fd0b1",
        "revidr": "0x0",
        "aidr": None,
        "cpus": [4, 5],
    }
    assert data["id_registers"] == {}
    assert data["writable_masks"] is None
    assert data["timer_frequency_hz"] is None
    assert data["provenance"]["backend"] == "sysfs"


def _cpu0_file(root: Path, name: str) -> Path:
    write_cpu(root, 0, A76)
    return root / "devices/system/cpu/cpu0/regs/identification" / name


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        ("no tree", "cannot list CPUs"),
        ("offline", "no CPU publishes"),
        ("garbage", "'garbage' is not a hex value"),
        ("no revidr", "revidr_el1: cannot read"),
    ],
)
def test_bad_trees_give_one_line_naming_the_file(tmp_path: Path, damage: str, problem: str) -> None:
    if damage == "offline":
        write_cpu(tmp_path, 0, None)
    elif damage == "garbage":
        _cpu0_file(tmp_path, "midr_el1").write_text("garbage\n")
    elif damage == "no revidr":
        _cpu0_file(tmp_path, "revidr_el1").unlink()
    with pytest.raises(ProbeError, match=problem) as raised:
        read_implementations(tmp_path)
    assert str(tmp_path) in str(raised.value)
    assert "\n" not in str(raised.value)


def test_probe_command_writes_the_sysfs_profile(big_little: Path, tmp_path: Path) -> None:
    output = tmp_path / "host.json"
    result = run_cli(*SYSFS_PROBE, big_little, "--host", "phone-7", "-o", output)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"Probed the CPU types in {big_little} (sysfs: no ID registers): "
        f"profile of host phone-7 written to {output}.\n"
    )
    written = json.loads(output.read_text())
    assert written["format"] == "qemu-errata/host-profile/1"
    assert [i["cpus"] for i in written["implementations"]] == [[0, 1, 2, 3], [4, 5], [6, 7]]


def test_probe_command_error_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / "host.json"
    result = run_cli(
        "probe", "--backend", "sysfs", "--sysfs-root", str(tmp_path / "nowhere"), "-o", str(output)
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "nowhere/devices/system/cpu" in result.stderr
    assert not output.exists()


@pytest.mark.parametrize(
    ("backend", "qemu_cpu", "sysfs_root", "problem"),
    [
        ("qemu", None, None, "--qemu-cpu MODEL is required"),
        ("qemu", "max", Path("/sys"), "--sysfs-root does not apply"),
        ("sysfs", "max", None, "--qemu-cpu applies to --backend qemu only"),
        ("kvm", "max", None, "--qemu-cpu applies to --backend qemu only"),
    ],
)
def test_probe_options_that_do_not_go_together(
    backend: str, qemu_cpu: str | None, sysfs_root: Path | None, problem: str
) -> None:
    with pytest.raises(InputError, match=problem):
        probe(backend, qemu_cpu, sysfs_root, None)


@pytest.mark.parametrize(
    ("plant", "problem"),
    [
        (os.mkfifo, "not a regular file (a FIFO)"),
        (lambda path: path.symlink_to("/dev/zero"), "not a regular file (a character device)"),
        (lambda path: path.write_bytes(b"0" * 100_000), "larger than 4096 bytes"),
    ],
    ids=["fifo", "dev-zero", "huge"],
)
def test_a_register_file_that_is_no_sysfs_attribute_is_refused_at_once(
    tmp_path: Path, plant: Callable[[Path], None], problem: str
) -> None:
    """A FIFO would hang a plain read, /dev/zero would fill memory: the reader is bounded."""
    write_cpu(tmp_path, 0, A55)
    midr = tmp_path / "devices/system/cpu/cpu0/regs/identification/midr_el1"
    midr.unlink()
    plant(midr)
    started = time.monotonic()
    with pytest.raises(ProbeError, match=re.escape(problem)):
        read_implementations(tmp_path)
    assert time.monotonic() - started < 5
