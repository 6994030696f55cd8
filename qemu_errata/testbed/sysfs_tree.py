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

    Per CPU ``devices/system/cpu/cpuN/regs/identification/{midr_el1,revidr_el1}``
    (an unknown REVIDR is written as 0), and the ``possible``, ``present`` and
    ``online`` CPU lists.
    """
    cpu_dir = root / "devices" / "system" / "cpu"
    cpus: list[int] = []
    for implementation in profile.implementations:
        for cpu in implementation.cpus:
            identification = cpu_dir / f"cpu{cpu}" / "regs" / "identification"
            identification.mkdir(parents=True)
            (identification / "midr_el1").write_text(sysfs_register(implementation.midr))
            revidr = implementation.revidr or 0
            (identification / "revidr_el1").write_text(sysfs_register(revidr))
            cpus.append(cpu)
    for name in ("possible", "present", "online"):
        (cpu_dir / name).write_text(format_cpus(cpus) + "\n")


def sysfs_register(value: int) -> str:
    return f"0x{value:016x}\n"  # the kernel's "0x%016llx\n"
