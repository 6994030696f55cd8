"""`nested` refuses, before it boots anything, what the nested host could not run."""

from __future__ import annotations

import time
from pathlib import Path

from support.cli import run_cli


def test_a_command_that_needs_more_than_the_standard_library_is_refused_at_once() -> None:
    started = time.monotonic()
    done = run_cli("nested", "--cpu", "neoverse-n1", "--", "render", "m.json", "--vmm", "qemu-kvm")
    assert time.monotonic() - started < 5  # no boot (a boot takes 5-20 s)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "qemu-errata: nested: 'render' cannot run in the nested host (it has Python's standard "
        "library only); it runs: baseline, check, errata, guest-view, kvm-validate, probe, "
        "profiles, qemu-check, show"
    )


def test_a_missing_input_file_is_reported_before_booting(tmp_path: Path) -> None:
    missing = tmp_path / "nosuch.json"
    started = time.monotonic()
    done = run_cli("nested", "--cpu", "neoverse-n1", "--", "check", missing, "kvm-6.12-cortex-a76")
    assert time.monotonic() - started < 5
    assert (done.returncode, done.stderr) == (
        2,
        f"qemu-errata: nested: check {missing}: no such file\n",
    )


def test_a_bad_command_line_is_refused_before_booting() -> None:
    done = run_cli("nested", "--cpu", "neoverse-n1", "--", "baseline", "--no-such-option", "x")
    assert done.returncode == 2
    assert "unrecognized arguments: --no-such-option" in done.stderr
