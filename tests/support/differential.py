"""Candidate register values for the differential test: our ``check`` against KVM's verdict.

Each candidate is one register of a probed host set to another value: each
field raised and lowered by one, set to zero and to all ones (the lowest
value of a signed field), and random bit flips inside and outside the
host's writable mask. A candidate becomes a pool model holding that one
register, so that the kernel's verdict and ``check``'s are about the same
register, whatever the others hold.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from qemu_errata.core.catalogue import Catalogue
from qemu_errata.core.pool import PoolModel, check
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.registers_table import Kind

REGISTER_BITS = 64
RANDOM_FLIPS = 3  # per register, inside the mask and outside it


def candidates(profile: HostProfile, catalogue: Catalogue, seed: int) -> list[tuple[str, int]]:
    """(register, value) pairs, each differing from the host's value, in a fixed order."""
    rng = random.Random(seed)
    found: list[tuple[str, int]] = []
    for name, host in profile.id_registers.items():
        register = catalogue.get(name)
        if register is None or register.kind not in (Kind.FEATURE, Kind.CACHE):
            continue
        values = set(_field_steps(register.fields, host))
        mask = profile.writable_mask(name)
        for _ in range(RANDOM_FLIPS):
            values.add(host ^ (rng.getrandbits(REGISTER_BITS) & mask))
            values.add(host ^ (rng.getrandbits(REGISTER_BITS) & ~mask & (1 << REGISTER_BITS) - 1))
        values.discard(host)
        found.extend((name, value) for value in sorted(values))
    return found


def _field_steps(fields: Sequence[Any], host: int) -> Iterator[int]:
    for field in fields:
        raw, top = field.raw(host), (1 << field.width) - 1
        for new in (raw + 1, raw - 1, 0, top):
            if 0 <= new <= top and new != raw:
                yield field.with_raw(host, new)


def model_json(profile: HostProfile, registers: Mapping[str, int]) -> dict[str, Any]:
    """A hand-written-style pool model: these registers, the host's own implementations."""
    return {
        "format": "qemu-errata/pool-model/1",
        "target_implementations": [
            {"midr": f"{i.midr:#x}", "revidr": f"{i.revidr:#x}", "aidr": f"{i.aidr:#x}"}
            for i in profile.implementations
        ],
        "id_registers": {name: f"{value:#x}" for name, value in registers.items()},
    }


def refused_by_check(model: PoolModel, profile: HostProfile, catalogue: Catalogue) -> set[str]:
    """The registers ``check`` says this host cannot present."""
    return {problem.register for problem in check(model, profile, catalogue).problems}
