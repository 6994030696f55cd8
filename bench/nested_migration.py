"""What the hook costs a real live migration under KVM: nested hosts, with and without it.

One fleet of two nested arm64 KVM hosts (qemu_errata.nested.fleet:
Neoverse-N1 on Linux 6.12 and on 7.2, Debian's QEMU 11.1.3), the heartbeat
guest of a 6.12 pool model migrated live from the 6.12 host to the 7.2 host
(qemu_errata.nested.migration), the runs alternating with and without the
hook so that machine load hits both alike. Rows: QEMU's total migration time
and its downtime (query-migrate), and the hook's own time on the destination
(migrate, prepare and start begin, run as libvirt runs them). libvirt runs no
hook at switch-over, so the downtime should not move. About 90 s per
migration on a 2-core TCG machine; not part of bench/all.py.

Usage: python bench/nested_migration.py [--runs 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from table import Row, format_table

from qemu_errata import processes
from qemu_errata.nested.fleet import HostSpec, fleet
from qemu_errata.nested.migration import QEMU_ERRATA, install_hooks, migrate, render

SOURCE, DESTINATION = HostSpec("neoverse-n1", "6.12"), HostSpec("neoverse-n1", "7.2")


def measure(runs: int) -> list[Row]:
    """``runs`` migrations with the hook and ``runs`` without, alternating."""
    samples: dict[str, list[float]] = {
        name: []
        for name in ("total, no hook", "total, hook", "downtime, no hook", "downtime, hook")
    }
    hook_seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="nested-migration-bench.") as scratch:
        model = Path(scratch) / "n1-6.12.json"
        processes.run(
            [*QEMU_ERRATA, "baseline", "kvm-6.12-neoverse-n1", "-o", str(model)],
            capture_output=True,
            check=True,
        )
        arguments, xml = render(model, SOURCE)
        with fleet([SOURCE, DESTINATION], lambda line: print(line, file=sys.stderr)) as hosts:
            install_hooks(hosts)
            for run in range(2 * runs):
                hook = run % 2 == 1
                report = migrate(
                    hosts[0], hosts[1], str(model), arguments, xml, hook=hook, progress=_quiet
                ).to_json()
                if report["outcome"] != "migrated":
                    sys.exit(
                        f"nested_migration: run {run}: {report['outcome']}: {report['message']}"
                    )
                label = "hook" if hook else "no hook"
                samples[f"total, {label}"].append(report["total_ms"] / 1000)
                samples[f"downtime, {label}"].append(report["downtime_ms"] / 1000)
                if hook:
                    destination = [r for r in report["hook_runs"] if r["host"] == hosts[1].name]
                    hook_seconds.append(sum(r["ms"] for r in destination) / 1000)
                print(
                    f"run {run} ({label}): {report['total_ms']} ms total, "
                    f"{report['downtime_ms']} ms downtime",
                    file=sys.stderr,
                )
    return [
        Row("nested migration total, no hook", samples["total, no hook"]),
        Row(
            "nested migration total, hook",
            samples["total, hook"],
            "nested migration total, no hook",
        ),
        Row("nested migration downtime, no hook", samples["downtime, no hook"]),
        Row(
            "nested migration downtime, hook",
            samples["downtime, hook"],
            "nested migration downtime, no hook",
            "~1.0x (no hook at switch-over)",
        ),
        Row("hook on the destination (3 ops)", hook_seconds),
    ]


def _quiet(_: str) -> None:
    """Progress of each run is not shown: the table is the result."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2)
    options = parser.parse_args()
    started = time.monotonic()
    print(format_table(measure(options.runs)))
    print(f"({time.monotonic() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
