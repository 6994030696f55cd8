"""Host profiles shipped with the package, so the demo and tests have real data.

``data/profiles/qemu-<model>.json`` are QEMU 7.2's CPU models as the qemu
probe reads them. Their writable masks are null: QEMU cannot show what a
kernel would let userspace change, so whoever uses them for a pool says which
masks it assumes. ``data/profiles/kvm-<kernel>-<model>.json`` are the kvm
probe run by a real Linux 6.12 or 7.2 kernel in a nested host emulating that
model (``qemu-errata nested``): they carry the kernel's real writable masks.
``scripts/make-embedded-profiles`` regenerates both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from qemu_errata.core.data_files import DATA_DIRECTORY, read_package_text
from qemu_errata.core.document import parse_json
from qemu_errata.core.profile import HostProfile, profile_from_json
from qemu_errata.errors import InputError

_SUFFIX = ".json"
# The host name of an embedded kvm profile: its CPU model and kernel series.
_KVM_HOST = re.compile(r"(?P<cpu>[a-z0-9-]+)-linux-(?P<series>[0-9]+\.[0-9]+)")


def embedded_profile_names() -> tuple[str, ...]:
    """The names of the shipped profiles, e.g. ``qemu-neoverse-n1``, sorted."""
    return tuple(
        sorted(
            name.removesuffix(_SUFFIX)
            for name in os.listdir(os.path.join(DATA_DIRECTORY, "profiles"))
            if name.endswith(_SUFFIX)
        )
    )


def load_embedded_profile(name: str) -> HostProfile:
    """One shipped profile; InputError naming the known ones for an unknown name."""
    names = embedded_profile_names()
    if name not in names:
        raise InputError(f"embedded profile {name!r}: unknown (known: {', '.join(names)})")
    text = read_package_text(f"profiles/{name}{_SUFFIX}")
    origin = f"embedded profile {name}"
    return profile_from_json(parse_json(text, origin), origin)


def profiles_for_series(hosts: Sequence[str], series: tuple[int, int] | None) -> list[str]:
    """For a pool of embedded kvm profiles' hosts (``neoverse-n1-linux-6.12``, ...) of another
    kernel series than ``series``: the embedded profiles of ``series`` for the same CPU models
    (``kvm-7.2-neoverse-n1``, ...), to compute the pool a host of that kernel can present.
    Empty when the hosts are not all such, are of ``series`` already, or it has no profiles."""
    if series is None or not hosts:
        return []
    wanted = f"{series[0]}.{series[1]}"
    found = [_KVM_HOST.fullmatch(host) for host in hosts]
    if not all(found) or all(m["series"] == wanted for m in found if m):
        return []
    names = [f"kvm-{wanted}-{m['cpu']}" for m in found if m]
    known = embedded_profile_names()
    return list(dict.fromkeys(names)) if all(name in known for name in names) else []
