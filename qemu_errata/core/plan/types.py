"""Plan types: host types that decide every pool alike, and the words that tell them apart.

Host types whose registers, masks, kernel, timer, firmware and GIC registers are
equal (they differ only in their CPU implementations, e.g. REVIDR revisions of one
part) form one plan type: any pool takes them together at no cost. Two plan types
may still read alike ("Arm Neoverse-N1 r4p1, Linux 6.12") when they differ only in
their timer frequency, a firmware register or one ID field: each such type's
description names what separates it from its nearest neighbour.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass

from qemu_errata.core.catalogue import Catalogue, load_catalogue
from qemu_errata.core.hosttypes import HostType, group_hosts, label_of, register_facts
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.words import plural

# How many of the facts that separate two look-alike types a description names.
NAMED_DIFFERENCES = 2


@dataclass(frozen=True)
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
        merged = dataclasses.replace(self.host_types[0], hosts=self.hosts).describe()
        distinction = f", {self.distinction}" if self.distinction else ""
        others = len(self.host_types) - 1
        variants = f" (and {plural(others, 'other CPU implementation')})" if others else ""
        return f"{merged}{distinction}{variants}"

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
        profile = dataclasses.replace(self.profile, implementations=tuple(seen.values()))
        return HostType(profile, self.hosts)


def plan_types(profiles: Sequence[HostProfile]) -> tuple[PlanType, ...]:
    """The plan types of ``profiles``, in the order their first hosts come."""
    groups: dict[Hashable, list[HostType]] = {}
    for host_type in group_hosts(profiles):
        groups.setdefault(register_facts(host_type.profile), []).append(host_type)
    types = [PlanType(f"T{n}", tuple(g)) for n, g in enumerate(groups.values(), 1)]
    return tuple(_distinguished(types, load_catalogue()))


def _distinguished(types: Sequence[PlanType], catalogue: Catalogue) -> Iterator[PlanType]:
    """Each type, with what separates it from its nearest look-alike when it has one."""
    alike: dict[str, list[PlanType]] = {}
    for plan_type in types:
        alike.setdefault(_base_words(plan_type), []).append(plan_type)
    for plan_type in types:
        others = [t for t in alike[_base_words(plan_type)] if t is not plan_type]
        if not others:
            yield plan_type
            continue
        nearest = min(
            (_differences(plan_type.profile, other.profile, catalogue) for other in others),
            key=len,
        )
        shown = nearest[:NAMED_DIFFERENCES]
        more = len(nearest) - len(shown)
        words = ", ".join(shown) + (f" (+{more} more)" if more else "")
        yield dataclasses.replace(plan_type, distinction=words)


def _base_words(plan_type: PlanType) -> str:
    """The CPU names and kernel of the description: where two types can read alike."""
    return plan_type.host_types[0].kind()


def _differences(own: HostProfile, other: HostProfile, catalogue: Catalogue) -> list[str]:
    """``own``'s facts that ``other`` does not share, in words (``timer 25 MHz``)."""
    words = []
    if own.timer_frequency_hz != other.timer_frequency_hz:
        words.append(_timer_words(own.timer_frequency_hz))
    for group in ("firmware_registers", "gic_registers", "id_registers"):
        mine, theirs = getattr(own, group), getattr(other, group)
        for name in sorted(set(mine) | set(theirs), key=lambda n: (n not in catalogue, n)):
            if mine.get(name) != theirs.get(name):
                words.append(_register_words(name, mine.get(name), theirs.get(name), catalogue))
    if own.writable_masks != other.writable_masks:
        words.append("other writable masks")
    if own.capabilities != other.capabilities:
        words.append("other KVM capabilities")
    return words


def _timer_words(hz: int | None) -> str:
    if hz is None:
        return "timer unknown"
    return f"timer {hz / 1e6:g} MHz"


def _register_words(name: str, own: int | None, other: int | None, catalogue: Catalogue) -> str:
    """``ID_AA64ISAR0_EL1.AES NI (0x0)``: the first field that differs, else the value."""
    if own is None:
        return f"no {name}"
    register = catalogue.get(name)
    if register is None or other is None:
        return f"{name} {own:#x}"
    for fld in register.fields:
        if fld.raw(own) != fld.raw(other):
            return f"{fld.qualified_name} {fld.describe(fld.raw(own))}"
    return f"{name} {own:#x}"
