"""The benchmark table: one row per case, medians, p95 and ratios to a named reference row;
and the start-up measurement of commands next to a bare interpreter."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One measured case: its samples (seconds) and the row its ratio is taken to."""

    name: str
    samples: Sequence[float]
    reference: str | None = None
    target: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        """Nearest-rank 95th percentile (the largest sample when there are fewer than 20)."""
        ordered = sorted(self.samples)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]


@dataclass(frozen=True)
class Command:
    """A command whose start-up is measured, and the exit status it must end with."""

    argv: Sequence[str]
    stdin: bytes | None = None
    environment: Mapping[str, str] | None = None
    status: int = 0


def startup_rows(
    prefix: str, commands: Mapping[str, Command], runs: int, budgets: Mapping[str, str]
) -> list[Row]:
    """Each command ``runs`` times next to a bare ``python3 -I -c pass``, interleaved so that
    machine load hits them alike; rows named ``prefix: name``, ratios to the bare one."""
    bare = f"{prefix}: bare {Path(sys.executable).name} -I -c pass"
    cases = {bare: Command([sys.executable, "-I", "-c", "pass"])}
    cases.update({f"{prefix}: {name}": command for name, command in commands.items()})
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, command in cases.items():
            started = time.perf_counter()
            result = subprocess.run(
                command.argv,
                input=command.stdin,
                env=command.environment,
                capture_output=True,
                check=False,
            )
            times[name].append(time.perf_counter() - started)
            if result.returncode != command.status:
                raise RuntimeError(
                    f"{name}: exit status {result.returncode}: {result.stderr.decode()}"
                )
    return [
        Row(name, samples, None if name == bare else bare, budgets.get(name.split(": ", 1)[1], ""))
        for name, samples in times.items()
    ]


def format_table(rows: Sequence[Row]) -> str:
    """The rows as aligned text, each ratio being its median over its reference's median."""
    medians = {row.name: row.median for row in rows}
    width = max(len(row.name) for row in rows)
    lines = [f"{'case':{width}}  {'runs':>4}  {'median':>10}  {'p95':>10}  {'ratio':>7}  target"]
    for row in rows:
        ratio = f"{row.median / medians[row.reference]:6.2f}x" if row.reference else "      -"
        lines.append(
            f"{row.name:{width}}  {len(row.samples):4}  {_time(row.median):>10}"
            f"  {_time(row.p95):>10}  {ratio:>7}  {row.target}"
        )
    return "\n".join(lines)


def _time(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"
