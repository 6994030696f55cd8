"""``plan`` at fleet scale: 10, 30 and 100 host types that plan cannot merge, the summary
and the command end to end, and the whole baseline per pair the matrix used to cost.

The fleets are testbed.fleet.varied_fleet (every embedded kvm profile, with timers,
PSCI versions and lowered ID fields of their own), four hosts per type. Series:

- plan + summary, in process (the catalogue loaded once before timing); ratios to
  10 types; at 100 types also accepting two lost mitigations by name (each candidate
  pool's hazards are then asked for what it accepts, what it refuses and what it costs);
- the command (``qemu-errata plan`` on the profile files, start-up and reading
  included); target: 100 types in under 2 s;
- every pair's whole baseline at 100 types (4,950 of them: what the matrix needs,
  now behind ``--detail``), next to the planning it replaced.

Usage: python bench/plan_scale.py [--runs 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from table import Row, format_table

from qemu_errata.core.catalogue import Catalogue, load_catalogue
from qemu_errata.core.plan import plan, plan_types
from qemu_errata.core.pool import baseline_of_types
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import IncompatiblePoolError
from qemu_errata.reports.plan_text import plan_summary
from qemu_errata.testbed.fleet import varied_fleet, write_fleet

Subject = TypeVar("Subject")
QEMU_ERRATA = str(Path(sys.executable).with_name("qemu-errata"))
TYPES = (10, 30, 100)
ACCEPTED = ("Spectre-v4", "Spectre-BHB")  # as --accept-lost-mitigation names them
HOSTS_PER_TYPE = 4


def measure(runs: int) -> list[Row]:
    """Each series ``runs`` times (the whole baseline per pair once: it takes seconds)."""
    catalogue = load_catalogue()
    fleets = {types: varied_fleet(types * HOSTS_PER_TYPE, types) for types in TYPES}
    rows = []
    first = f"plan + summary, {TYPES[0]} types"
    for types, fleet in fleets.items():
        samples = _timed(lambda f: plan_summary(plan(f, catalogue=catalogue)), fleet, runs)
        rows.append(Row(f"plan + summary, {types} types", samples, _unless(first, types)))
    largest = fleets[TYPES[-1]]
    accepting = _timed(
        lambda f: plan_summary(plan(f, catalogue=catalogue, accepted=ACCEPTED)), largest, runs
    )
    plain = f"plan + summary, {TYPES[-1]} types"
    rows.append(Row(f"{plain}, accepting {', '.join(ACCEPTED)}", accepting, plain))
    first = f"plan command, {TYPES[0]} types"
    with tempfile.TemporaryDirectory(prefix="plan-bench.") as temporary:
        for types, fleet in fleets.items():
            files = write_fleet(Path(temporary) / str(types), fleet)
            samples = _timed(_command, files, runs)
            target = "< 2 s" if types == 100 else ""
            rows.append(Row(f"plan command, {types} types", samples, _unless(first, types), target))
    rows.append(
        Row(
            f"whole baseline of every pair, {TYPES[-1]} types",
            _timed(lambda f: _every_pair(f, catalogue), largest, 1),
            f"plan + summary, {TYPES[-1]} types",
        )
    )
    return rows


def _unless(first: str, types: int) -> str | None:
    return None if types == TYPES[0] else first


def _timed(action: Callable[[Subject], object], subject: Subject, runs: int) -> Sequence[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action(subject)
        samples.append(time.perf_counter() - started)
    return samples


def _command(files: Sequence[Path]) -> None:
    command = [QEMU_ERRATA, "plan", *map(str, files)]
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"plan: exit status {result.returncode}: {result.stderr!r}")


def _every_pair(fleet: Sequence[HostProfile], catalogue: Catalogue) -> None:
    """What the matrix cost before: a whole baseline for each pair of types."""
    standing = [t.as_host_type() for t in plan_types(fleet)]
    for n, first in enumerate(standing):
        for second in standing[n + 1 :]:
            try:
                baseline_of_types([first, second], catalogue)
            except IncompatiblePoolError:
                continue  # a refused pair costs the same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    print(format_table(measure(options.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
