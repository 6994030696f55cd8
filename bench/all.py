"""Every benchmark in one run, one table: the hook's and the command's start-up, baseline and
plan scaling (by hosts, and by types: plan_scale), the hook's cost to a live migration
on the test bed, and recognising the local QEMU (vmm_discovery).

Medians, p95 (nearest rank) and the ratio of each median to its reference
row's (named in the row's module docstring), with the target where the
issues set one. Benchmarks, not tests: nothing here fails on a number.
Needs root, QEMU and libvirt for the migration rows (scripts/install);
the whole run takes about two minutes here.

Usage: python bench/all.py [--hook-runs 30] [--scaling-runs 3] [--largest 10000] [--migrations 10]
"""

from __future__ import annotations

import argparse
import sys
import time

import cli_startup
import hook_startup
import migration
import plan_scale
import scaling
import vmm_discovery
from table import format_table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hook-runs", type=int, default=30)
    parser.add_argument("--scaling-runs", type=int, default=3)
    parser.add_argument("--largest", type=int, default=10000)
    parser.add_argument("--migrations", type=int, default=10)
    options = parser.parse_args()
    started = time.monotonic()
    rows = hook_startup.measure(options.hook_runs)
    rows += cli_startup.measure(options.hook_runs)
    rows += migration.measure(options.migrations)
    rows += scaling.measure(options.scaling_runs, options.largest)
    rows += plan_scale.measure(options.scaling_runs)
    rows += vmm_discovery.measure(options.hook_runs)
    print(format_table(rows))
    print(f"({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
