"""Synthetic fleets: many host profiles of a few types, from the embedded real-kernel profiles.

For scale tests and benchmarks of baseline and plan: host ``rack<R>-h<N>``
takes one of ``types`` host types, each an embedded kvm profile with its own
REVIDR (so the types differ in their target implementation, as revisions of
one part do in a real fleet, and still share a pool when their models do).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.profile import HostProfile

# Pairs that form a pool on Linux 6.12: a fleet of these has one pool.
POOLING_MODELS = ("kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76")
HOSTS_PER_RACK = 64


def synthetic_fleet(
    hosts: int, types: int, models: Sequence[str] = POOLING_MODELS
) -> list[HostProfile]:
    """``hosts`` profiles of ``types`` types, spread round-robin over the types."""
    kinds = [_kind(models[i % len(models)], revidr=i // len(models)) for i in range(types)]
    return [
        dataclasses.replace(
            kinds[index % types], host=f"rack{index // HOSTS_PER_RACK:03}-h{index:05}"
        )
        for index in range(hosts)
    ]


def _kind(model: str, revidr: int) -> HostProfile:
    profile = load_embedded_profile(model)
    implementations = tuple(dataclasses.replace(i, revidr=revidr) for i in profile.implementations)
    return dataclasses.replace(profile, implementations=implementations)
