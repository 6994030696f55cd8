"""The installed ``qemu-errata`` command, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# The console script next to the interpreter running the tests: what a user gets.
QEMU_ERRATA = str(Path(sys.executable).with_name("qemu-errata"))


def run_cli(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed ``qemu-errata`` with ``args``; output captured as text."""
    return subprocess.run(
        [QEMU_ERRATA, *map(str, args)], capture_output=True, text=True, check=False, timeout=timeout
    )
