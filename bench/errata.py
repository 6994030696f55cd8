"""How long the errata answer for a large pool takes: ``pool_errata`` on 64 target implementations.

Target: under 50 ms for a 64-entry target list. The list is 64
distinct real implementations taken from the errata table's own ranges
(varied revisions and REVIDRs), so most errata and mitigation lists are hit.
The table is loaded once before timing (as a long-running caller would);
the first-call cost including loading the table is printed separately.

Usage: python bench/errata.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

from qemu_errata.core.errata import load_errata_table, pool_errata
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations

REGISTERS = {"ID_AA64PFR0_EL1": 0x1100000000000011, "CTR_EL0": 0x8444C004}


def targets(count: int) -> TargetImplementations:
    """``count`` distinct implementations named by the table's ranges."""
    table = load_errata_table()
    parts = sorted({(r.implementer, r.part) for e in table.errata for r in e.affects})
    chosen: list[TargetImplementation] = []
    revision = 0
    while len(chosen) < count:
        for implementer, part in parts:
            midr = implementer << 24 | (revision % 4) << 20 | 0xF << 16 | part << 4 | revision % 3
            chosen.append(TargetImplementation(midr, revision % 2, 0))
            if len(chosen) == count:
                break
        revision += 1
    return TargetImplementations(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    start = time.perf_counter()
    table = load_errata_table()
    pool = targets(64)
    first = pool_errata(table, pool, REGISTERS)
    first_ms = (time.perf_counter() - start) * 1000

    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        pool_errata(table, pool, REGISTERS)
        times.append((time.perf_counter() - start) * 1000)
    assert first.guest is not None
    print(f"targets: {len(pool)}; errata enabled: {len(first.guest.errata)}")
    print(f"first call incl. loading errata.toml and registers.toml: {first_ms:.1f} ms")
    print(f"pool_errata, median of {args.runs}: {statistics.median(times):.1f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
