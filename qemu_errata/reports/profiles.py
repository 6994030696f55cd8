"""The ``profiles`` report (profiles/1): the embedded host profiles, in JSON and text."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qemu_errata.core.midr import Midr
from qemu_errata.core.profile import HostProfile

PROFILES_FORMAT = "qemu-errata/profiles/1"


def profiles_json(profiles: Mapping[str, HostProfile]) -> dict[str, Any]:
    return {
        "format": PROFILES_FORMAT,
        "profiles": [
            {
                "name": name,
                "host": profile.host,
                "cpus": _cpus(profile),
                "backend": profile.provenance.get("backend"),
                "kernel": profile.provenance.get("kernel"),
                "writable_masks_known": profile.writable_masks is not None,
            }
            for name, profile in profiles.items()
        ],
    }


def profiles_lines(profiles: Mapping[str, HostProfile]) -> list[str]:
    lines = ["Embedded host profiles (usable by name wherever a profile is read):"]
    lines.extend(f"  {name:<26} {_summary(profile)}" for name, profile in profiles.items())
    return lines


def _cpus(profile: HostProfile) -> list[str]:
    return [Midr(i.midr).describe() for i in profile.implementations]


def _summary(profile: HostProfile) -> str:
    cpus = ", ".join(_cpus(profile))
    if profile.provenance.get("backend") == "kvm":
        return f"{cpus}; KVM of Linux {profile.provenance.get('kernel')}, real writable masks"
    return f"{cpus}; QEMU's CPU model (no KVM: writable masks unknown)"
