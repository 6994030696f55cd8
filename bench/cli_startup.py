"""How long the ``qemu-errata`` command takes to start, next to a bare ``python3 -I -c pass``.

About 80 tests start the command, and operators script it. Budget: ``--version``
at most 3x the bare interpreter, ``check MODEL PROFILE`` at most 5x (a command
imports only its own module). Each case runs ``--runs`` times, interleaved with
the others so that machine load hits them alike; the medians, p95 and the
ratios of the medians to the bare interpreter are printed. The command keeps its
table copies (qemu_errata/table_copies.py) in a cache of its own, filled before
measuring: another install sharing ~/.cache would replace them with its own
version's, and every run would parse the TOML tables again.

Usage: python bench/cli_startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from table import Command, Row, format_table, startup_rows

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import baseline
from qemu_errata.files import write_json

QEMU_ERRATA = str(Path(sys.executable).with_name("qemu-errata"))
# Budgets, by case: at most this many times the bare interpreter.
BUDGETS = {"--version": "<= 3x", "check MODEL PROFILE": "<= 5x"}


def measure(runs: int) -> list[Row]:
    """Each case ``runs`` times, interleaved; ratios to the bare interpreter."""
    with tempfile.TemporaryDirectory(prefix="cli-bench.") as temporary:
        n1 = load_embedded_profile("kvm-6.12-neoverse-n1")
        model, profile = Path(temporary) / "model.json", Path(temporary) / "n1.json"
        write_json(model, baseline([n1]).to_json())
        write_json(profile, n1.to_json())
        environment = {**os.environ, "XDG_CACHE_HOME": str(Path(temporary) / "cache")}
        check = [QEMU_ERRATA, "check", str(model), str(profile)]
        subprocess.run(check, env=environment, capture_output=True, check=True)  # the copies
        commands = {
            "--version": Command([QEMU_ERRATA, "--version"], environment=environment),
            "check MODEL PROFILE": Command(check, environment=environment),
        }
        return startup_rows("cli", commands, runs, BUDGETS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    print(format_table(measure(parser.parse_args().runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
