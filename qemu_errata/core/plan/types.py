"""Plan types: host types that decide every pool alike, and the words that tell them apart.

Host types whose registers, masks, kernel, timer, firmware and GIC registers are
equal (they differ only in their CPU implementations, e.g. REVIDR revisions of one
part) form one plan type: any pool takes them together at no cost. Two plan types
may still read alike ("Arm Neoverse-N1 r4p1, Linux 6.12") when they differ only in
their timer frequency, a firmware register or one ID field: each such type's
description names what separates it from its nearest neighbour.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.distinctions import differences, distinctions
from qemu_errata.core.errata.hazards import Exposure, exposure
from qemu_errata.core.hosttypes import HostType, group_hosts, label_of, register_facts
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import record, replace
from qemu_errata.core.words import plural


@record
class PlanType:
    """Host types that decide every pool alike (they may differ only in CPU implementations)."""

    id: str
    host_types: tuple[HostType, ...]
    # What separates it from the type it reads most alike ("" when its words are its own).
    distinction: str = ""

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(host for t in self.host_types for host in t.hosts)

    @property
    def label(self) -> str:
        return label_of(self.hosts)

    @property
    def profile(self) -> HostProfile:
        return self.host_types[0].profile

    def describe(self) -> str:
        """``T1: 512 hosts like rack03-h0007: Arm Neoverse-N1 r4p1, Linux 6.12`` (+ variants,
        + what separates it from a type that reads alike)."""
        return f"{self.id}: {self.words()}"

    def words(self) -> str:
        """The description without the id."""
        merged = replace(self.host_types[0], hosts=self.hosts, distinction="")
        distinction = f", {self.distinction}" if self.distinction else ""
        return f"{merged.describe()}{distinction}{self._variants()}"

    def _variants(self) -> str:
        """`` (REVIDR 0x0, 0x1)``: what its host types differ in (their implementations)."""
        if len(self.host_types) == 1:
            return ""
        first = self.host_types[0].profile
        differing = {
            word
            for t in self.host_types[1:]
            for word in differences(t.profile, first, load_catalogue())
        }
        if differing and all(w.startswith(("REVIDR", "AIDR")) for w in differing):
            revidrs = dict.fromkeys(
                i.revidr for t in self.host_types for i in t.profile.implementations
            )
            if len(revidrs) > 1:
                shown = ", ".join("unknown" if r is None else f"{r:#x}" for r in revidrs)
                return f" (REVIDR {shown})"
        others = len(self.host_types) - 1
        return f" (and {plural(others, 'other CPU implementation')})"

    def like(self) -> str:
        """``40 hosts like rack01-n1-h000``: the type in a few words."""
        count = len(self.hosts)
        return self.hosts[0] if count == 1 else f"{count} hosts like {self.hosts[0]}"

    def named(self) -> str:
        """``40 hosts like rack01-n1-h000 (Arm Neoverse-N1 r4p1, Linux 6.12)``."""
        distinction = f", {self.distinction}" if self.distinction else ""
        return f"{self.like()} ({self.host_types[0].kind()}{distinction})"

    def as_host_type(self) -> HostType:
        """One host type standing for all: its profile lists every implementation once."""
        seen: dict[tuple[int, int | None, int | None], Implementation] = {}
        for host_type in self.host_types:
            for i in host_type.profile.implementations:
                seen.setdefault((i.midr, i.revidr, i.aidr), i)
        profile = replace(self.profile, implementations=tuple(seen.values()))
        return HostType(profile, self.hosts)


def plan_types(profiles: Sequence[HostProfile]) -> tuple[PlanType, ...]:
    """The plan types of ``profiles``, in the order their first hosts come; host types whose
    implementations together make guests lose a mitigation stay apart (hazards)."""
    groups: dict[Hashable, list[tuple[list[HostType], Exposure]]] = {}
    for host_type in group_hosts(profiles):
        bins = groups.setdefault(register_facts(host_type.profile), [])
        mine = exposure(host_type.profile)
        found = next((i for i, (_, theirs) in enumerate(bins) if not mine.clashes(theirs)), None)
        if found is None:
            bins.append(([host_type], mine))
        else:
            bins[found][0].append(host_type)
            bins[found] = (bins[found][0], bins[found][1] | mine)
    merged = [tuple(members) for bins in groups.values() for members, _ in bins]
    types = [PlanType(f"T{n}", g) for n, g in enumerate(merged, 1)]
    words = distinctions(
        types, lambda t: t.host_types[0].kind(), lambda t: t.profile, load_catalogue()
    )
    return tuple(
        replace(t, distinction=distinction) for t, distinction in zip(types, words, strict=True)
    )
