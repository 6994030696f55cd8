"""The benchmark table: one row per case, medians, p95 and ratios to a named reference row."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


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
