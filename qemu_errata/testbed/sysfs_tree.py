"""A simulated host's "physical CPU": the sysfs tree the arm64 kernel shows for a profile."""

from __future__ import annotations

from pathlib import Path

from qemu_errata.core.cpulist import format_cpus
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.profile import HostProfile


def cpu_host(name: str, midr: int, cpus: tuple[int, ...] = (0, 1)) -> HostProfile:
    """A host profile of CPUs of one MIDR and nothing else: all the hook reads of a host."""
    return HostProfile(
        host=name,
        implementations=(Implementation(midr, 0, None, cpus),),
        id_registers={},
        writable_masks=None,
        timer_frequency_hz=None,
    )


def write_sysfs_tree(profile: HostProfile, root: Path) -> None:
    """The sysfs files the arm64 kernel shows for ``profile``'s CPUs, under ``root``.

    Each CPU's identification (write_cpu_identity; an unknown REVIDR is written
    as 0), and the ``possible``, ``present`` and ``online`` CPU lists.
    """
    cpus: list[int] = []
    for implementation in profile.implementations:
        for cpu in implementation.cpus:
            write_cpu_identity(root, cpu, implementation.midr, implementation.revidr or 0)
            cpus.append(cpu)
    for name in ("possible", "present", "online"):
        (root / "devices" / "system" / "cpu" / name).write_text(format_cpus(cpus) + "\n")


def write_cpu_identity(root: Path, cpu: int, midr: int | None, revidr: int = 0) -> Path:
    """CPU ``cpu``'s directory under the sysfs root ``root``, as the arm64 kernel shows it.

    ``regs/identification/{midr_el1,revidr_el1}`` hold the values as the kernel
    prints them (``"0x%016llx\n"``); ``midr`` None is an offline CPU, whose
    directory has no ``regs``. The one helper for fake sysfs trees: tests and
    benchmarks use it too. Returns the identification directory.
    """
    directory = root / "devices" / "system" / "cpu" / f"cpu{cpu}"
    identification = directory / "regs" / "identification"
    directory.mkdir(parents=True, exist_ok=True)
    if midr is not None:
        identification.mkdir(parents=True)
        (identification / "midr_el1").write_text(_sysfs_register(midr))
        (identification / "revidr_el1").write_text(_sysfs_register(revidr))
    return identification


def _sysfs_register(value: int) -> str:
    return f"0x{value:016x}\n"  # the kernel's "0x%016llx\n"
