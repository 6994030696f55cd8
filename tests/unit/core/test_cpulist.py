"""CPU number lists as the kernel writes them, and the word their count takes."""

from __future__ import annotations

from qemu_errata.core.cpulist import format_cpus, named_cpus


def test_ranges_are_written_as_the_kernel_writes_them() -> None:
    assert format_cpus([6, 0, 1, 2, 3]) == "0-3,6"


def test_one_cpu_is_singular_and_several_plural() -> None:
    assert named_cpus([4]) == "CPU 4"
    assert named_cpus([0, 1, 2, 3]) == "CPUs 0-3"
    assert named_cpus([0, 2]) == "CPUs 0,2"
