"""The installed ``qemu-errata`` command, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# The console script next to the interpreter running the tests: what a user gets.
QEMU_ERRATA = str(Path(sys.executable).with_name("qemu-errata"))


def run_cli(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed ``qemu-errata`` with ``args``; output captured as text."""
    return subprocess.run(
        [QEMU_ERRATA, *map(str, args)], capture_output=True, text=True, check=False, timeout=timeout
    )


def run_into_closed_pipe(
    *args: str | Path, environment: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``qemu-errata`` with stdout a pipe whose reader is gone (``| head -1``
    that already quit); stderr captured as text."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [QEMU_ERRATA, *map(str, args)],
            env=environment,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=60,
        )
    finally:
        os.close(writer)
