"""Synthetic fleets: many host profiles of a few types, from the embedded real-kernel profiles.

For scale tests and benchmarks of baseline and plan: host ``rack<R>-h<N>``
takes one of ``types`` host types, each an embedded kvm profile with its own
REVIDR (so the types differ in their target implementation, as revisions of
one part do in a real fleet, and still share a pool when their models do).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.files import write_json

# Pairs that form a pool on Linux 6.12: a fleet of these has one pool.
POOLING_MODELS = ("kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76")
HOSTS_PER_RACK = 64


def synthetic_fleet(
    hosts: int, types: int, models: Sequence[str] = POOLING_MODELS
) -> list[HostProfile]:
    """``hosts`` profiles of ``types`` types, spread round-robin over the types."""
    kinds = [_kind(models[i % len(models)], revidr=i // len(models)) for i in range(types)]
    return [
        replace(kinds[index % types], host=f"rack{index // HOSTS_PER_RACK:03}-h{index:05}")
        for index in range(hosts)
    ]


def _kind(model: str, revidr: int) -> HostProfile:
    profile = load_embedded_profile(model)
    implementations = tuple(replace(i, revidr=revidr) for i in profile.implementations)
    return replace(profile, implementations=implementations)


# Every real-kernel profile embedded: the models a varied fleet's types derive from.
KVM_MODELS = tuple(
    f"kvm-{kernel}-{cpu}"
    for kernel in ("6.12", "7.2", "7.3")
    for cpu in ("neoverse-n1", "cortex-a76", "cortex-a72", "cortex-a57", "a64fx", "max")
)
# Timer frequencies (Hz) of the variants that differ only in it: 25 MHz, 50 MHz, 100 MHz.
TIMER_VARIANTS = (25_000_000, 50_000_000, 100_000_000)


def varied_fleet(hosts: int, types: int, models: Sequence[str] = KVM_MODELS) -> list[HostProfile]:
    """``hosts`` profiles of ``types`` types that plan cannot merge (no two of the same facts).

    Type ``i`` is model ``i % len(models)``, varied by its round ``i // len(models)``:
    round 0 as probed; then, in turn, a timer frequency of its own, a REVIDR and a
    lowered writable ID field (a type that pools with its model at a loss), a PSCI
    version of its own (a firmware register), each round's variant distinct.
    """
    kinds = [_variant(models[i % len(models)], i // len(models)) for i in range(types)]
    return [
        replace(kinds[index % types], host=f"rack{index // HOSTS_PER_RACK:03}-h{index:05}")
        for index in range(hosts)
    ]


def _variant(model: str, round_: int) -> HostProfile:
    profile = load_embedded_profile(model)
    if round_ == 0:
        return profile
    step = (round_ - 1) // 3
    kind = (round_ - 1) % 3
    if kind == 0:
        timer = TIMER_VARIANTS[step % len(TIMER_VARIANTS)] + step // len(TIMER_VARIANTS)
        return replace(profile, timer_frequency_hz=timer)
    if kind == 1:
        lowered = _lowered(profile, step)
        implementations = tuple(replace(i, revidr=round_) for i in lowered.implementations)
        return replace(lowered, implementations=implementations)
    firmware = dict(profile.firmware_registers)
    firmware["KVM_REG_ARM_PSCI_VERSION"] = 0x10000 + step
    return replace(profile, firmware_registers=firmware)


def _lowered(profile: HostProfile, step: int) -> HostProfile:
    """``profile`` with its ``step``-th non-zero writable ID_AA64ISAR0_EL1 field lowered to 0."""
    register = load_catalogue()["ID_AA64ISAR0_EL1"]
    value = profile.id_registers.get(register.name, 0)
    mask = profile.writable_mask(register.name)
    fields = [f for f in register.fields if f.raw(value) and mask & f.mask == f.mask]
    if not fields:
        return profile
    chosen = fields[step % len(fields)]
    registers = {**profile.id_registers, register.name: chosen.with_raw(value, 0)}
    return replace(profile, id_registers=registers)


def write_fleet(directory: Path, profiles: Iterable[HostProfile]) -> list[Path]:
    """Each profile as ``<host>.json`` in ``directory`` (made if missing): the files a
    scale test or benchmark gives ``plan``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for profile in profiles:
        path = directory / f"{profile.host}.json"
        write_json(path, profile.to_json())
        paths.append(path)
    return paths
