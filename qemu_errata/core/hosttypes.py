"""Host types: hosts whose profiles agree on everything that decides a pool.

A fleet has thousands of hosts but few kinds of them. Two profiles are of one
type when their CPU implementations (MIDR, REVIDR, AIDR; not which CPU
numbers), ID registers, writable masks, kernel version, timer frequency,
firmware and GIC registers and KVM capabilities (a writable MIDR, for one) are
equal: every decision (baseline, check, what the VMM writes, errata) is then
the same for both, so it is taken once per type and reported per type.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.distinctions import distinctions
from qemu_errata.core.midr import Midr
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import record, replace


@record
class HostType:
    """Hosts of one kind: the first one's profile stands for all of them."""

    profile: HostProfile
    hosts: tuple[str, ...]
    # What separates it from the type it reads most alike ("" when its words are its own).
    distinction: str = ""

    @property
    def label(self) -> str:
        return label_of(self.hosts)

    def describe(self) -> str:
        """E.g. ``512 hosts like rack03-h0007: Arm Neoverse-N1 r4p1, Linux 6.12``."""
        count = "1 host" if len(self.hosts) == 1 else f"{len(self.hosts)} hosts like"
        distinction = f", {self.distinction}" if self.distinction else ""
        return f"{count} {self.hosts[0]}: {self.kind()}{distinction}"

    def kind(self) -> str:
        """E.g. ``Arm Neoverse-N1 r4p1, Linux 6.12``: the CPUs and the kernel."""
        cpus = ", ".join(_cpu_name(i.midr) for i in self.profile.implementations)
        kernel = self.profile.kernel_version
        linux = "kernel unknown" if kernel is None else f"Linux {kernel[0]}.{kernel[1]}"
        return f"{cpus}, {linux}"


def label_of(hosts: Sequence[str]) -> str:
    """How messages name hosts of one type: the first, and how many more are like it."""
    return hosts[0] if len(hosts) == 1 else f"{hosts[0]} (+{len(hosts) - 1} alike)"


def first_hosts(types: Iterable[Sequence[str]]) -> dict[str, str]:
    """The label of each type's hosts (label_of) to its first host's name: how JSON keys
    what words name by label (JSON is keyed by host names)."""
    return {label_of(hosts): hosts[0] for hosts in types}


def group_hosts(profiles: Sequence[HostProfile]) -> list[HostType]:
    """The host types of ``profiles``, in the order their first hosts come.

    A type's hosts are sorted by name, so that its label does not depend on the
    order the profiles were given in. Types that read alike (same CPUs and kernel)
    carry what separates each from its nearest look-alike (core.distinctions).
    """
    groups: dict[Hashable, list[HostProfile]] = {}
    for profile in profiles:
        groups.setdefault(_deciding_facts(profile), []).append(profile)
    types = []
    for members in groups.values():
        first = min(members, key=lambda p: p.host)
        types.append(HostType(first, tuple(sorted(p.host for p in members))))
    words = distinctions(types, HostType.kind, lambda t: t.profile, load_catalogue())
    return [replace(t, distinction=d) for t, d in zip(types, words, strict=True)]


def _deciding_facts(profile: HostProfile) -> Hashable:
    implementations = frozenset((i.midr, i.revidr, i.aidr) for i in profile.implementations)
    return implementations, register_facts(profile)


def register_facts(profile: HostProfile) -> Hashable:
    """Everything that decides a pool but the CPU implementations: registers, masks, kernel,
    timer and what the kernel can do (plan puts hosts alike in these in one row)."""
    masks = profile.writable_masks
    return (
        frozenset(profile.id_registers.items()),
        None if masks is None else frozenset(masks.items()),
        profile.kernel_version,
        profile.timer_frequency_hz,
        frozenset(profile.firmware_registers.items()),
        frozenset(profile.gic_registers.items()),
        frozenset(profile.capabilities.items()),
    )


def _cpu_name(midr: int) -> str:
    """``Arm Neoverse-N1 r4p1``."""
    return Midr(midr).name()
