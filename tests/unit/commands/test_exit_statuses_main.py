"""Exit statuses of commands/main.py for bad input, bugs and closed pipes."""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

import pytest
from support.cli import run_cli, run_into_closed_pipe

from qemu_errata.commands import main as command_line
from qemu_errata.commands import pool
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.errors import ExitStatus


@pytest.fixture
def two_profiles(tmp_path: Path) -> list[Path]:
    paths = []
    for name in ("kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(load_embedded_profile(name).to_json()))
        paths.append(path)
    return paths


def test_a_closed_output_pipe_is_not_a_verdict(two_profiles: list[Path], tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    assert run_cli("baseline", *two_profiles, "-o", model).returncode == 0
    cases: list[tuple[str | Path, ...]] = [
        ("baseline", *two_profiles),
        ("baseline", "--json", *two_profiles),
        ("check", model, two_profiles[0]),
        ("check", "--json", model, two_profiles[0]),
        ("render", "--vmm", "qemu-kvm", model),
        ("render", "--json", "--vmm", "qemu-kvm", model),
    ]
    for args in cases:
        result = run_into_closed_pipe(*args)
        assert (result.returncode, result.stderr) == (ExitStatus.OUTPUT_CLOSED, ""), args


def test_output_goes_into_missing_parent_directories(
    two_profiles: list[Path], tmp_path: Path
) -> None:
    model = tmp_path / "var/lib/qemu-errata/pool.json"
    result = run_cli("baseline", *two_profiles, "-o", model)
    assert result.returncode == 0, result.stderr
    assert json.loads(model.read_text())["format"] == "qemu-errata/pool-model/1"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[" * 5000 + "]" * 5000, "nested deeper than 32 levels"),
        ('{"host": 1' + "0" * 5000 + "}", "a number past 1e+30"),
        ('{"format": "qemu-errata/host-profile/1", "host": "n1\\udc80"}', "lone surrogate"),
        ('{"format": "qemu-errata/host-profile/1", "format": "x"}', "duplicate key 'format'"),
    ],
)
def test_malformed_profiles_are_one_line_and_status_2(
    content: str, problem: str, two_profiles: list[Path], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = run_cli("baseline", two_profiles[0], bad)
    assert result.returncode == ExitStatus.BAD_INPUT
    assert result.stderr.startswith(f"qemu-errata: {bad}: ")
    assert problem in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_special_files_are_refused_at_once(two_profiles: list[Path], tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    specials: list[tuple[str | Path, str]] = [("/dev/zero", "a character device"), (fifo, "a FIFO")]
    for special, kind in specials:
        result = run_cli("baseline", two_profiles[0], special, timeout=20)
        assert result.returncode == ExitStatus.BAD_INPUT
        assert result.stderr == f"qemu-errata: {special}: not a regular file ({kind})\n"


def _bug(args: argparse.Namespace) -> int:
    empty: dict[str, int] = {}
    return empty["no such key"]


def test_an_internal_error_is_status_3_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], two_profiles: list[Path]
) -> None:
    monkeypatch.setattr(pool, "_cmd_baseline", _bug)
    assert command_line.main(["baseline", str(two_profiles[0])]) == ExitStatus.INTERNAL
    assert capsys.readouterr().err == (
        "qemu-errata: internal error: KeyError: 'no such key'"
        " (run with --debug for the traceback)\n"
    )
    assert command_line.main(["--debug", "baseline", str(two_profiles[0])]) == ExitStatus.INTERNAL
    shown = capsys.readouterr().err
    assert shown.startswith("Traceback (most recent call last):")
    assert "in _bug" in shown


def test_main_leaves_the_signal_handlers_as_it_found_them(two_profiles: list[Path]) -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    assert command_line.main(["baseline", *map(str, two_profiles)]) == ExitStatus.OK
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)) == before
