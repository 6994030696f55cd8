"""Children die with their parent and temporary directories go with it, even on SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# A parent that starts a long child and opens a guarded directory, says both, and waits.
PARENT = """
import subprocess, sys, time
from qemu_errata import processes
with processes.temporary_directory("qe-test-") as directory:
    (directory / "socket").write_text("")
    child = processes.start(["sleep", "600"], stdin=subprocess.DEVNULL)
    print(child.pid, directory, flush=True)
    time.sleep(600)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def _wait_until(condition: object, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("number", [signal.SIGKILL, signal.SIGTERM])
def test_the_child_and_the_directory_do_not_outlive_the_parent(
    number: signal.Signals, tmp_path: Path
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert parent.stdout is not None
    pid, directory = parent.stdout.readline().split()
    assert Path(directory).is_dir()
    assert not _gone(int(pid))
    parent.send_signal(number)
    parent.wait(10)
    try:
        assert _wait_until(lambda: _gone(int(pid))), "the child outlived its parent"
        assert _wait_until(lambda: not Path(directory).exists()), "the directory stayed"
    finally:
        if not _gone(int(pid)):
            os.kill(int(pid), signal.SIGKILL)
