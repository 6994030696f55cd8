"""How baseline and plan scale with the fleet: 10 to 10,000 hosts, few types and all distinct.

In-process compute on synthetic fleets (qemu_errata.testbed.fleet), the
catalogue loaded once before timing. Series:

- baseline, 4 types: hosts of Neoverse-N1 and Cortex-A76 on Linux 6.12 (one pool);
- baseline, all distinct: every host its own type (a REVIDR of its own);
- plan, 4 types and all distinct: the same fleets planned;
- plan, 30 types of 11 models: real-kernel profiles of 11 CPU/kernel pairs that do
  not all pool (target: 10,000 hosts in under 5 s).

Ratios are to the 10-host row of the same series: linear growth shows as x1000
at 10,000 hosts, grouping by type keeps it near x1.

Usage: python bench/scaling.py [--runs 5] [--largest 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from table import Row, format_table

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.plan import plan
from qemu_errata.core.pool import baseline
from qemu_errata.core.profile import HostProfile
from qemu_errata.testbed.fleet import synthetic_fleet

MIXED_MODELS = (
    "kvm-6.12-neoverse-n1",
    "kvm-6.12-cortex-a72",
    "kvm-7.2-cortex-a76",
    "kvm-6.12-cortex-a57",
    "kvm-6.12-a64fx",
    "kvm-7.2-max",
    "kvm-6.12-cortex-a76",
    "kvm-7.2-neoverse-n1",
    "kvm-7.2-cortex-a72",
    "kvm-7.2-a64fx",
    "kvm-6.12-max",
)
# Runs of the slowest cases (all-distinct baseline takes seconds at 10,000 hosts).
SLOW_RUNS = 3


def sizes(largest: int) -> list[int]:
    return [n for n in (10, 100, 1000, 10000) if n <= largest]


def measure(runs: int, largest: int = 10000) -> list[Row]:
    """Every series at every size, ``runs`` timed runs each (fewer for cases over a second)."""
    catalogue = load_catalogue()
    series: list[
        tuple[str, Callable[[int], list[HostProfile]], Callable[[list[HostProfile]], object]]
    ] = [
        ("baseline, 4 types", lambda n: synthetic_fleet(n, 4), lambda f: baseline(f, catalogue)),
        (
            "baseline, all distinct",
            lambda n: synthetic_fleet(n, n),
            lambda f: baseline(f, catalogue),
        ),
        ("plan, 4 types", lambda n: synthetic_fleet(n, 4), lambda f: plan(f, catalogue=catalogue)),
        (
            "plan, all distinct",
            lambda n: synthetic_fleet(n, n),
            lambda f: plan(f, catalogue=catalogue),
        ),
        (
            "plan, 30 types of 11 models",
            lambda n: synthetic_fleet(n, min(n, 30), MIXED_MODELS),
            lambda f: plan(f, catalogue=catalogue),
        ),
    ]
    rows = []
    for title, make, run in series:
        first = f"{title}, {sizes(largest)[0]} hosts"
        for hosts in sizes(largest):
            fleet = make(hosts)
            samples = _timed(run, fleet, runs)
            target = "< 5 s" if title.startswith("plan, 30") and hosts == 10000 else ""
            name = f"{title}, {hosts} hosts"
            rows.append(Row(name, samples, None if name == first else first, target))
    return rows


def _timed(
    action: Callable[[list[HostProfile]], object], fleet: list[HostProfile], runs: int
) -> Sequence[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action(fleet)
        samples.append(time.perf_counter() - started)
        if samples[-1] > 1 and len(samples) >= SLOW_RUNS:
            break
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--largest", type=int, default=10000)
    options = parser.parse_args()
    print(format_table(measure(options.runs, options.largest)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
