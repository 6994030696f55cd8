"""What recognising this machine's QEMU costs a command, asked of the binary and remembered.

On an arm64 machine every command that decides by the local QEMU
(``check``, ``baseline``, ``plan``...) recognises ``qemu-system-aarch64``:
its ``--version`` and a search of its binary for property names, or, once
that binary file was seen, what was remembered of it
(qemu_errata/vmm/seen_binaries.py). bench/cli_startup.py cannot show this
off arm64 (no local QEMU counts there), so ``vmm_of_binary`` is timed here
directly on the binary, whatever this machine's architecture: cold (an
empty cache each run, as after installing or upgrading QEMU) and warm, the
ratio taken to cold. Nothing is measured without the binary.

Usage: python bench/vmm_discovery.py [--runs 30] [--binary PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from table import Row, format_table

from qemu_errata.core.vmms import newest_known
from qemu_errata.vmm.discovery import QEMU_BINARY, vmm_of_binary

COLD = "vmm_of_binary: asked (nothing remembered)"
WARM = "vmm_of_binary: remembered"


def measure(runs: int, binary: str | None = None) -> list[Row]:
    """``vmm_of_binary`` ``runs`` times cold and warm, interleaved; none without a QEMU."""
    binary = binary or shutil.which(QEMU_BINARY)
    if binary is None:
        return []
    newest_known()  # the table is loaded once, before timing, in both cases
    times: dict[str, list[float]] = {COLD: [], WARM: []}
    previous = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory(prefix="vmm-bench.") as temporary:
        warm = str(Path(temporary) / "warm")
        try:
            os.environ["XDG_CACHE_HOME"] = warm
            vmm_of_binary(binary)  # remembered from now on
            for run in range(runs):
                os.environ["XDG_CACHE_HOME"] = str(Path(temporary) / f"cold-{run}")
                times[COLD].append(_timed(binary))
                os.environ["XDG_CACHE_HOME"] = warm
                times[WARM].append(_timed(binary))
        finally:
            if previous is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = previous
    return [Row(COLD, times[COLD]), Row(WARM, times[WARM], COLD)]


def _timed(binary: str) -> float:
    started = time.perf_counter()
    vmm_of_binary(binary)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--binary", help=f"a QEMU binary (default: {QEMU_BINARY} on PATH)")
    options = parser.parse_args()
    rows = measure(options.runs, options.binary)
    if not rows:
        print(f"no {options.binary or QEMU_BINARY}: nothing to measure")
        return 1
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
