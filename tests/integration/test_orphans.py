"""Killing a command that runs QEMU leaves no QEMU and no temporary directory behind.

Each run gets its own TMPDIR, so the QEMU of this run (its command line names
its socket directory there) and the directories it leaves are told apart from
other users of the machine. QEMU_ERRATA_KILL_RUNS sets the runs per signal
(default 3; the issue's measurement used 20).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from support.cli import QEMU_ERRATA, run_into_closed_pipe

from qemu_errata.files import write_json

pytestmark = pytest.mark.integration

RUNS = int(os.environ.get("QEMU_ERRATA_KILL_RUNS", "3"))
_SETTLE_S = 5.0


def _processes_naming(text: str, marker: bytes = b"qemu-system") -> list[int]:
    """PIDs of live (not zombie) QEMUs whose command line contains ``text`` and ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (
            text.encode() in command
            and state != "Z"
            and b"qemu-system" in command
            and marker in command
        ):
            found.append(int(entry.name))
    return found


def _kill_probe(number: signal.Signals, scratch: Path) -> tuple[subprocess.Popen[str], str]:
    """Start a QEMU probe, signal it once its QEMU runs; its exit and stderr."""
    scratch.mkdir()
    probe = subprocess.Popen(
        [QEMU_ERRATA, "probe", "--backend", "qemu", "--qemu-cpu", "max", "-o", str(scratch / "p")],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not _processes_naming(str(scratch)) and probe.poll() is None:
        assert time.monotonic() < deadline, "QEMU did not start"
        time.sleep(0.005)
    time.sleep(random.uniform(0, 0.05))
    probe.send_signal(number)
    _, stderr = probe.communicate(timeout=30)
    return probe, stderr


def _leftovers(scratch: Path) -> tuple[int, int]:
    """(QEMUs, temporary directories) of ``scratch`` still there after a short settling time."""
    deadline = time.monotonic() + _SETTLE_S
    while time.monotonic() < deadline:
        orphans = _processes_naming(str(scratch))
        directories = [p for p in scratch.iterdir() if p.is_dir()]
        if not orphans and not directories:
            break
        time.sleep(0.05)
    for pid in orphans:  # do not leave them running for the rest of the suite
        os.kill(pid, signal.SIGKILL)
    return len(orphans), len(directories)


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT])
def test_a_killed_qemu_probe_leaves_nothing(number: signal.Signals, tmp_path: Path) -> None:
    orphans = directories = finished = 0
    for run in range(RUNS):
        scratch = tmp_path / f"run{run}"
        probe, stderr = _kill_probe(number, scratch)
        found_orphans, found_directories = _leftovers(scratch)
        orphans += found_orphans
        directories += found_directories
        if (scratch / "p").exists():
            finished += 1  # the probe finished before the signal arrived: nothing to judge
            continue
        assert probe.returncode in (-number, 128 + number), stderr
        if number != signal.SIGKILL:
            assert "Traceback" not in stderr
            assert len(stderr.splitlines()) == 1, stderr
        if number == signal.SIGKILL:
            # SIGKILL can land between the temporary file and the rename: that leftover is
            # never the output, and the next write of the same file removes it.
            write_json(scratch / "p", {})
        assert not list(scratch.glob(".p.*")), "a temporary output file was left"
    print(
        f"{number.name}: {RUNS} runs ({finished} finished first), "
        f"{orphans} orphaned QEMU, {directories} temporary dirs"
    )
    assert (orphans, directories) == (0, 0)


def test_a_probe_into_a_closed_pipe_ends_quietly_and_cleans_up(tmp_path: Path) -> None:
    environment = {**os.environ, "TMPDIR": str(tmp_path)}
    probe = run_into_closed_pipe(
        "probe", "--backend", "qemu", "--qemu-cpu", "max", environment=environment
    )
    assert (probe.returncode, probe.stderr) == (141, "")
    assert _leftovers(tmp_path) == (0, 0)


def test_a_killed_demo_leaves_no_qemu() -> None:
    """libvirtd's QEMUs are not our descendants: the test bed's guardians kill them."""
    # The test bed's users must reach its directories: not under pytest's private tmp_path.
    tmp_path = Path(tempfile.mkdtemp(prefix="qe-"))  # short: socket paths
    tmp_path.chmod(0o755)
    try:
        _kill_demo(tmp_path)
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)


def _kill_demo(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [QEMU_ERRATA, "demo"],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not _processes_naming(str(tmp_path), b"guest="):  # libvirt's, not a probe's
        assert demo.poll() is None, "the demo ended without starting a VM"
        assert time.monotonic() < deadline, "the demo started no VM"
        time.sleep(0.1)
    demo.kill()
    demo.wait()
    assert _leftovers(tmp_path)[0] == 0
