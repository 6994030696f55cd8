"""CPU number lists in the kernel's notation (``0-3,6``)."""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs start-up time on the hook's path
if TYPE_CHECKING:
    from collections.abc import Iterable


def format_cpus(cpus: Iterable[int]) -> str:
    """CPU numbers as the kernel lists them: ranges, e.g. ``0-3,6``."""
    ranges: list[list[int]] = []
    for cpu in sorted(cpus):
        if ranges and ranges[-1][1] == cpu - 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def named_cpus(cpus: Iterable[int]) -> str:
    """``CPU 4`` or ``CPUs 0-3,6``: the numbers with the word their count takes."""
    numbers = sorted(set(cpus))
    return f"CPU{'' if len(numbers) == 1 else 's'} {format_cpus(numbers)}"
