"""What a kernel upgrade would make of a host's profile, for ``plan --kernel-upgrade`` (pure).

A host cannot be probed on a kernel it does not run yet. What the kernel decides is
known from the embedded profiles, probed on nested hosts of the same CPU models
under each kernel: its writable masks, firmware registers and capabilities, and the
ID register values that kernel shows differently. An upgraded host keeps its own
values except where the embedded profiles of its CPU differ between its kernel and
the new one, where it takes the new kernel's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace


def upgraded(
    profile: HostProfile, version: tuple[int, int], embedded: Mapping[str, HostProfile]
) -> HostProfile | None:
    """``profile`` as it would be on Linux ``version``; None when no embedded profile of its
    CPU on both kernels tells (then the upgrade cannot be predicted)."""
    current = profile.kernel_version
    if current is None or current >= version:
        return profile if current is not None else None
    midrs = sorted(i.midr for i in profile.implementations)
    before = _embedded_of(midrs, current, embedded)
    after = _embedded_of(midrs, version, embedded)
    if before is None or after is None:
        return None
    registers = dict(profile.id_registers)
    for name, value in after.id_registers.items():
        if before.id_registers.get(name) != value:
            registers[name] = value
    release = after.provenance.get("kernel")
    return replace(
        profile,
        id_registers=registers,
        writable_masks=after.writable_masks,
        firmware_registers=after.firmware_registers,
        gic_registers=after.gic_registers,
        capabilities=after.capabilities,
        provenance={
            **profile.provenance,
            "kernel": release,
            "upgraded_from": f"{current[0]}.{current[1]}",
        },
    )


def _embedded_of(
    midrs: Sequence[int], version: tuple[int, int], embedded: Mapping[str, HostProfile]
) -> HostProfile | None:
    return next(
        (
            p
            for name, p in sorted(embedded.items())
            if name.startswith("kvm-")
            and p.kernel_version == version
            and sorted(i.midr for i in p.implementations) == midrs
        ),
        None,
    )
