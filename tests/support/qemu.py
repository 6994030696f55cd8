"""A paused QEMU TCG guest reachable over QMP, for the tests that read a running VM."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def paused_qemu(directory: Path, arguments: list[str]) -> Iterator[Path]:
    """A paused virt guest (128 MiB) with ``arguments``; yields its QMP socket, then kills it."""
    socket = directory / "qmp.sock"
    process = subprocess.Popen(
        [
            *("qemu-system-aarch64", "-machine", "virt", "-m", "128", "-nodefaults"),
            *("-display", "none", "-S", *arguments, "-qmp", f"unix:{socket},server=on,wait=off"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not socket.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"QEMU did not start: {process.communicate()[1]}")
            time.sleep(0.05)
        yield socket
    finally:
        process.kill()
        process.wait()
