"""What the hook costs a live migration: ``migrate3`` of one VM, with and without the hook.

Two test beds side by side (qemu_errata.testbed.bed), each two hosts
(Neoverse-N1 and Cortex-A76 sysfs CPUs): one with the hook installed as
``qemu-errata hook install`` writes it, one without. Each runs a pool VM (the
same domain XML, pool metadata naming both CPUs), migrated back and forth;
the runs alternate between the two beds so that machine load hits both
alike. The hook's cost is on the destination (``migrate begin``): a pool
decision. Target: with / without <= 1.05. Needs root, QEMU and
libvirt (scripts/install).

Usage: python bench/migration.py [--runs 10]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from table import Row, format_table

from qemu_errata.commands.hook import SCRIPT_NAME, install
from qemu_errata.core.implementations import (
    TargetImplementation,
    TargetImplementations,
)
from qemu_errata.core.pool import PoolModel
from qemu_errata.testbed.bed import Host, TestBed, cpu_host, guest_xml, migrate
from qemu_errata.vmm.pool_element import pool_element

N1 = 0x414FD0C1
A76 = 0x414FD0B1
POOL = PoolModel(
    id_registers={},
    target_implementations=TargetImplementations(
        TargetImplementation(midr, 0, None) for midr in (N1, A76)
    ),
)
WITH_HOOK = "migrate3 with the hook"
WITHOUT_HOOK = "migrate3 without the hook"


@contextlib.contextmanager
def two_hosts(hook: Path | None) -> Iterator[tuple[TestBed, list[Host]]]:
    with TestBed() as bed:
        if hook is not None:
            bed.install_hook(hook)
        yield bed, bed.start_hosts([cpu_host("n1", N1), cpu_host("a76", A76)])


def measure(runs: int) -> list[Row]:
    """``runs`` migrations in each bed, alternating, each direction in turn."""
    times: dict[str, list[float]] = {WITH_HOOK: [], WITHOUT_HOOK: []}
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="migrate-bench.")))
        install(scratch / "hooks")
        beds = {
            WITH_HOOK: stack.enter_context(two_hosts(scratch / "hooks" / SCRIPT_NAME)),
            WITHOUT_HOOK: stack.enter_context(two_hosts(None)),
        }
        guests: dict[str, Any] = {
            name: hosts[0].start_guest(
                guest_xml("bench-vm", "cortex-a76", metadata=[pool_element(POOL)])
            )
            for name, (_, hosts) in beds.items()
        }
        for run in range(runs + 1):  # the first round warms both up and is not counted
            for name, (_, hosts) in beds.items():
                destination = hosts[(run + 1) % 2]
                started = time.perf_counter()
                guests[name] = migrate(guests[name], destination)
                if run:
                    times[name].append(time.perf_counter() - started)
        for guest in guests.values():
            guest.destroy()
    return [
        Row(WITHOUT_HOOK, times[WITHOUT_HOOK]),
        Row(WITH_HOOK, times[WITH_HOOK], WITHOUT_HOOK, "<= 1.05x"),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    print(format_table(measure(parser.parse_args().runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
