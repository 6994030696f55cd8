"""Whether a set of plan types forms a pool, and at what cost, without a whole baseline each.

A baseline decides each register apart (pool.register_outcome), from each host's
value, writable bits and kernel alone. A fleet of a hundred types has few distinct
values per register, so each register is judged once per distinct set of values
and the verdicts are reused by every set of types that holds the same values. The
pool those registers give is then put to the VMM (vmm_fit.pool_refusals: what it
cannot write, the target list it cannot give, and whatever else it refuses), as
baseline_with does: a set of types forms a pool only when both agree.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

from qemu_errata.core.catalogue import Catalogue
from qemu_errata.core.errata.hazards import (
    Hazard,
    Hosts,
    accepted_hazards,
    accepting,
    hosts_of,
    model_hazards,
    needed_by,
)
from qemu_errata.core.hosttypes import HostType
from qemu_errata.core.implementations import TargetImplementations
from qemu_errata.core.pool import (
    REGISTER_GROUPS,
    TIMER_REGISTER,
    Blocker,
    HostGroup,
    PoolModel,
    Reason,
    writable_bits,
)
from qemu_errata.core.pool.baseline import RegisterOutcome, pool_registers, register_outcome
from qemu_errata.core.pool.host import host_value
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import record, replace
from qemu_errata.core.vmm_fit import pool_refusals
from qemu_errata.core.vmms import Vmm


@record
class Fit:
    """A set of types as one pool: why not (blockers), or the host-fields it loses."""

    blockers: tuple[Blocker, ...]
    cost: int  # per field lost, the hosts of the types that lose it
    lost: frozenset[str]  # the fields lost (qualified names)

    @property
    def valid(self) -> bool:
        return not self.blockers


@record
class _Verdict:
    """One register's outcome for one set of value classes, by class."""

    outcome: RegisterOutcome
    writes: frozenset[int]  # the classes whose hosts the VMM writes
    losing: dict[int, int]  # per class, the fields its hosts lose
    lost: frozenset[str]  # the fields lost


class Fits:
    """The fit of any set of ``standing`` types (by index), register verdicts shared."""

    def __init__(
        self,
        standing: Sequence[HostType],
        catalogue: Catalogue,
        vmm: Vmm | None,
        accepted: Sequence[str] = (),
    ):
        self.standing = standing
        self.catalogue = catalogue
        self.vmm = vmm
        self.accepted = tuple(accepted)  # hazards the operator accepts, by name
        self.registers = _registers(standing, catalogue)
        keys: dict[Hashable, int] = {}
        self.classes = [
            [
                keys.setdefault(self._key(t, group, name), len(keys))
                for group, name in self.registers
            ]
            for t in standing
        ]
        self.reports = [
            frozenset(
                r
                for r, (group, name) in enumerate(self.registers)
                if name in getattr(t.profile, group)
            )
            for t in standing
        ]
        self.labels = [t.label for t in standing]
        self.counts = [len(t.hosts) for t in standing]
        self.verdicts: dict[tuple[int, frozenset[int]], _Verdict] = {}

    def fit(self, block: frozenset[int]) -> Fit:
        members = sorted(block)
        values: dict[str, dict[str, int]] = {group: {} for group in REGISTER_GROUPS}
        writes: dict[int, list[str]] = {t: [] for t in members}
        blockers: list[Blocker] = []
        cost = 0
        lost: set[str] = set()
        for r in sorted(frozenset().union(*(self.reports[t] for t in members))):
            group, name = self.registers[r]
            by_class = {self.classes[t][r]: t for t in reversed(members)}
            verdict = self._verdict(r, by_class)
            if verdict.outcome.blockers:
                names = {_placeholder(c): self.labels[t] for c, t in by_class.items()}
                blockers.extend(_named(b, names) for b in verdict.outcome.blockers)
            if verdict.outcome.value is not None:
                values[group][name] = verdict.outcome.value
            for t in members:
                value_class = self.classes[t][r]
                if value_class in verdict.writes:
                    writes[t].append(name)
                cost += verdict.losing.get(value_class, 0) * self.counts[t]
            lost.update(verdict.lost)
        blockers.extend(self._timer(members))
        if not blockers:
            hosts = self.hosts(members)
            model = self._model(members, values, writes)
            hazards = model_hazards(model, hosts)  # once for the three questions below
            model = accepting(model, self.accepted, hosts, hazards)
            blockers.extend(pool_refusals(model, self.vmm, self.catalogue, hosts, hazards))
            cost += self.accepted_cost(model, hazards, members)
        return Fit(tuple(blockers), cost, frozenset(lost))

    def hosts(self, members: Iterable[int]) -> Hosts:
        """The profile of each implementation of ``members``, named by its type's label."""
        return hosts_of(_renamed(self.standing[t], self.labels[t]) for t in members)

    def accepted_cost(
        self, model: PoolModel, hazards: Sequence[Hazard], members: Iterable[int]
    ) -> int:
        """An accepted lost mitigation costs like a lost field, on each host that loses it
        (``hazards``: the model's)."""
        accepted = accepted_hazards(model, hazards=hazards)
        if not accepted:
            return 0
        return sum(
            self.counts[t] * len(needed_by(accepted, self.standing[t].profile)) for t in members
        )

    def apart(self) -> dict[frozenset[int], list[int]]:
        """The pairs of types some register or the timer keeps apart, with the registers
        that do, found register by register: each pair of value classes is judged once,
        then every pair of types of those classes is marked (a fit of the pair would find
        the same blockers: ``apart_blockers``)."""
        pairs: dict[frozenset[int], list[int]] = {}
        for r in range(len(self.registers)):
            self._mark_register(r, pairs)
        timers: dict[int, list[int]] = {}
        for t, host_type in enumerate(self.standing):
            if host_type.profile.timer_frequency_hz is not None:
                timers.setdefault(host_type.profile.timer_frequency_hz, []).append(t)
        groups = list(timers.values())
        for a, alike in enumerate(groups):
            for others in groups[a + 1 :]:
                for t in alike:
                    for u in others:
                        pairs.setdefault(frozenset({t, u}), [])
        return pairs

    def _mark_register(self, r: int, pairs: dict[frozenset[int], list[int]]) -> None:
        """Mark the pairs of types register ``r`` keeps apart."""
        members: dict[int, list[int]] = {}
        for t, classes in enumerate(self.classes):
            members.setdefault(classes[r], []).append(t)
        ordered = sorted(members)
        for n, first in enumerate(ordered):
            for second in ordered[n + 1 :]:
                by_class = {first: members[first][0], second: members[second][0]}
                if not self._verdict(r, by_class).outcome.blockers:
                    continue
                for t in members[first]:
                    for u in members[second]:
                        if r in self.reports[t] or r in self.reports[u]:
                            pairs.setdefault(frozenset({t, u}), []).append(r)

    def apart_blockers(self, pair: frozenset[int], registers: Sequence[int]) -> Fit:
        """The fit of a pair ``apart`` found, from the registers it named (and the timer)."""
        members = sorted(pair)
        blockers: list[Blocker] = []
        for r in sorted(registers):
            by_class = {self.classes[t][r]: t for t in reversed(members)}
            names = {_placeholder(c): self.labels[t] for c, t in by_class.items()}
            blockers.extend(_named(b, names) for b in self._verdict(r, by_class).outcome.blockers)
        blockers.extend(self._timer(members))
        return Fit(tuple(blockers), 0, frozenset())

    def _verdict(self, r: int, by_class: dict[int, int]) -> _Verdict:
        key = (r, frozenset(by_class))
        if key not in self.verdicts:
            group, name = self.registers[r]
            classes = sorted(by_class)
            profiles = [_renamed(self.standing[by_class[c]], _placeholder(c)) for c in classes]
            outcome = register_outcome(profiles, group, name, self.catalogue, self.vmm)
            self.verdicts[key] = _Verdict(
                outcome,
                frozenset(c for c in classes if _placeholder(c) in outcome.writes),
                {
                    c: sum(_placeholder(c) in loss.host_values for loss in outcome.losses)
                    for c in classes
                },
                frozenset(loss.field.qualified_name for loss in outcome.losses),
            )
        return self.verdicts[key]

    def _key(self, host_type: HostType, group: str, name: str) -> Hashable:
        """What a baseline reads of one host to decide ``name``: equal keys, equal verdicts."""
        profile = host_type.profile
        register = self.catalogue.get(name)
        checked = register is not None and register.kvm_check is not None
        return (
            host_value(profile, group, name, register),
            writable_bits(profile, name, register),
            profile.kernel_version,
            profile.writable_masks is None,
            frozenset(getattr(profile, group).items()) if checked else None,
        )

    def _timer(self, members: Sequence[int]) -> list[Blocker]:
        known = {
            self.labels[t]: self.standing[t].profile.timer_frequency_hz
            for t in members
            if self.standing[t].profile.timer_frequency_hz is not None
        }
        if len(set(known.values())) <= 1:
            return []
        hosts = ", ".join(f"{h}={f} Hz" for h, f in known.items())
        return [
            Blocker(
                TIMER_REGISTER,
                None,
                f"timer frequencies differ ({hosts}): guests cannot migrate between them",
                Reason.TIMER_DIFFERS,
                {h: f"{f} Hz" for h, f in known.items()},
            )
        ]

    def _model(
        self,
        members: Sequence[int],
        values: dict[str, dict[str, int]],
        writes: dict[int, list[str]],
    ) -> PoolModel:
        """The pool the registers give (no losses or notes: what the VMM is asked to do)."""
        types = [self.standing[t] for t in members]
        frequencies = {t.profile.timer_frequency_hz for t in types} - {None}
        return PoolModel(
            id_registers=values["id_registers"],
            firmware_registers=values["firmware_registers"],
            gic_registers=values["gic_registers"],
            target_implementations=TargetImplementations(
                i.target for t in types for i in t.profile.implementations
            ),
            timer_frequency_hz=next(iter(frequencies), None),
            host_groups=tuple(
                HostGroup(self.standing[t].describe(), self.standing[t].hosts, tuple(writes[t]))
                for t in members
            ),
        )


def _registers(standing: Sequence[HostType], catalogue: Catalogue) -> list[tuple[str, str]]:
    """Every register some type reports, as baseline orders them (pool_registers)."""
    profiles = [t.profile for t in standing]
    return [
        (group, name)
        for group in REGISTER_GROUPS
        for name in pool_registers(profiles, group, catalogue)
    ]


def _placeholder(value_class: int) -> str:
    return f"<values {value_class}>"


def _renamed(host_type: HostType, name: str) -> HostProfile:
    return replace(host_type.profile, host=name)


def _named(blocker: Blocker, names: dict[str, str]) -> Blocker:
    """``blocker`` with each placeholder replaced by the label of a type holding those values."""
    message = blocker.message
    for placeholder, label in names.items():
        message = message.replace(placeholder, label)
    values = {names.get(k, k): v for k, v in blocker.values.items()}
    return replace(blocker, message=message, values=values)
