"""Exit statuses of commands/main.py for bad input, bugs and closed pipes."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import warnings
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
    numbers = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    before = [signal.getsignal(number) for number in numbers]
    assert command_line.main(["baseline", *map(str, two_profiles)]) == ExitStatus.OK
    assert [signal.getsignal(number) for number in numbers] == before


async def _signalled_while_gathering(number: signal.Signals) -> None:
    # The shape of qemu.qmp's disconnect: a gathering future whose child the unwinding
    # cancels; nothing retrieves its CancelledError, and asyncio logs it when collected.
    child = asyncio.ensure_future(asyncio.sleep(60))
    gathering = asyncio.gather(child)
    asyncio.get_running_loop().call_later(0.01, os.kill, os.getpid(), number)
    try:
        await asyncio.sleep(5)
    finally:
        child.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        del gathering


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_during_asyncio_work_is_one_line_without_asyncios_traceback(
    number: signal.Signals,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    two_profiles: list[Path],
) -> None:
    monkeypatch.setattr(logging.getLogger("asyncio"), "disabled", False)  # main disables it

    def signalled(args: argparse.Namespace) -> int:
        asyncio.run(_signalled_while_gathering(number))
        return ExitStatus.OK

    monkeypatch.setattr(pool, "_cmd_baseline", signalled)
    assert command_line.main(["baseline", str(two_profiles[0])]) == ExitStatus.SIGNALLED + number
    gc.collect()
    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []
    expected = "interrupted" if number == signal.SIGINT else f"terminated by {number.name}"
    assert capsys.readouterr().err == f"qemu-errata: {expected}\n"


def test_a_signal_leaves_no_warning_about_work_it_cut_short(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], two_profiles: list[Path]
) -> None:
    # A signal landing in asyncio.run's own cleanup leaves a coroutine it never awaited.
    def signalled(args: argparse.Namespace) -> int:
        cut_short = asyncio.sleep(0)
        os.kill(os.getpid(), signal.SIGTERM)
        return ExitStatus.OK if cut_short else ExitStatus.NO

    monkeypatch.setattr(pool, "_cmd_baseline", signalled)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        status = command_line.main(["baseline", str(two_profiles[0])])
        gc.collect()
    assert status == ExitStatus.SIGNALLED + signal.SIGTERM
    assert [str(warning.message) for warning in shown] == []
    assert capsys.readouterr().err == "qemu-errata: terminated by SIGTERM\n"
