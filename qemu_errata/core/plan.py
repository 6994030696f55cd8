"""Planning pools for a fleet: which host types can share a pool, and a proposed partition.

Pure. Hosts are grouped into host types (see hosttypes), and host types whose
registers, masks, kernel, timer, firmware and GIC registers are equal (they
differ only in their CPU implementations, e.g. REVIDR revisions of one part)
into one *plan type*: any pool takes such types together at no cost (their
implementations join its target list; every register decision is the same),
so the plan never splits them.

The cost of a pool is the number of fields its hosts lose, weighted by hosts:
for each field the pool presents below a type's own value, that type's host
count. The proposal minimises, for the default, the number of pools and then
the cost; with a limit of N pools, the cost and then the number of pools.
It is exact up to EXACT_TYPES plan types (every valid block is found, growing
blocks only from valid ones: a set that cannot pool makes every superset fail,
and a pair that cannot pool rules out every block holding both). Beyond, a
stated heuristic: start from one pool per type and merge, again and again, the
two pools whose union is valid and adds the least cost.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from qemu_errata.core.catalogue import Catalogue, Field, Register, load_catalogue
from qemu_errata.core.errata import ErrataTable, guest_workarounds, load_errata_table
from qemu_errata.core.errata.hazards import (
    Exposure,
    Hazard,
    Hosts,
    accepted_hazards,
    accepting,
    exposure,
    hosts_of,
    needed_by,
)
from qemu_errata.core.hosttypes import HostType, group_hosts, label_of, register_facts
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.pool import (
    Blocker,
    HostGroup,
    Loss,
    PoolModel,
    baseline_of_types,
    check,
    check_host_names,
    writable_bits,
)
from qemu_errata.core.pool_ids import Move, PreviousPlan, kept_ids, moves, pool_id
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.vmm_fit import check_with, pool_refusals
from qemu_errata.core.vmms import Vmm
from qemu_errata.core.words import plural
from qemu_errata.errors import IncompatiblePoolError, NoPartitionError

# Up to this many plan types the partition is exact; beyond, the merging heuristic.
EXACT_TYPES = 10


@dataclass(frozen=True)
class PlanType:
    """Host types that decide every pool alike (they may differ only in CPU implementations)."""

    id: str
    host_types: tuple[HostType, ...]

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(host for t in self.host_types for host in t.hosts)

    @property
    def label(self) -> str:
        return label_of(self.hosts)

    def describe(self) -> str:
        """``T1: 512 hosts like rack03-h0007: Arm Neoverse-N1 r4p1, Linux 6.12`` (+ variants)."""
        first = self.host_types[0]
        merged = dataclasses.replace(first, hosts=self.hosts).describe()
        others = len(self.host_types) - 1
        variants = f" (and {plural(others, 'other CPU implementation')})" if others else ""
        return f"{self.id}: {merged}{variants}"

    def as_host_type(self) -> HostType:
        """One host type standing for all: its profile lists every implementation once."""
        seen: dict[tuple[int, int | None, int | None], Implementation] = {}
        for host_type in self.host_types:
            for i in host_type.profile.implementations:
                seen.setdefault((i.midr, i.revidr, i.aidr), i)
        profile = dataclasses.replace(
            self.host_types[0].profile, implementations=tuple(seen.values())
        )
        return HostType(profile, self.hosts)


@dataclass(frozen=True)
class Pairing:
    """Two plan types: can they share a pool, what they lose together, or why not."""

    first: PlanType
    second: PlanType
    losses: tuple[Loss, ...]
    blockers: tuple[Blocker, ...]
    deciding: str  # the deciding fields in words ("" when they can share a pool)
    # Errata (and mitigations) a guest of the pair enables that guests of both alone do not.
    errata: tuple[str, ...] = ()
    # Mitigations the pair's guests skip on hosts that need them (accepted by name), in words.
    lost: tuple[str, ...] = ()

    @property
    def compatible(self) -> bool:
        return not self.blockers


@dataclass(frozen=True)
class ProposedPool:
    """One pool of the proposal: its plan types, its model and what its hosts lose."""

    id: str
    types: tuple[PlanType, ...]
    model: PoolModel
    cost: int
    # Errata (and mitigations) every Linux >= 6.15 guest of the pool works around.
    errata: tuple[str, ...] = ()
    # Mitigations its guests skip on hosts that need them (accepted by name), in words.
    lost: tuple[str, ...] = ()

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(host for t in self.types for host in t.hosts)


@dataclass(frozen=True)
class Plan:
    """The compatibility matrix of plan types and the proposed pools."""

    types: tuple[PlanType, ...]
    pairings: tuple[Pairing, ...]
    pools: tuple[ProposedPool, ...]
    exact: bool
    limit: int | None
    reasons: tuple[str, ...]
    # Hosts whose pool differs from the previous plan's (plan --previous).
    moves: tuple[Move, ...] = ()

    def pairing(self, first: PlanType, second: PlanType) -> Pairing:
        """The pairing of two different types (pairings run row by row above the diagonal)."""
        i, j = sorted((self.types.index(first), self.types.index(second)))
        return self.pairings[i * (2 * len(self.types) - i - 1) // 2 + j - i - 1]

    def search(self) -> str:
        """How the pools were found, in words."""
        if self.exact:
            return f"exact search over {plural(len(self.types), 'type')}"
        return (
            f"heuristic over {plural(len(self.types), 'type')} (exact up to {EXACT_TYPES}): "
            "merge the two pools that can share and add the least cost, until "
            + ("no two can" if self.limit is None else f"at most {self.limit} remain")
        )


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
    merged = [tuple(types) for bins in groups.values() for types, _ in bins]
    return tuple(PlanType(f"T{n}", g) for n, g in enumerate(merged, 1))


def plan(
    profiles: Sequence[HostProfile],
    limit: int | None = None,
    catalogue: Catalogue | None = None,
    *,
    vmm: Vmm | None = None,
    previous: PreviousPlan | None = None,
    accepted: Sequence[str] = (),
) -> Plan:
    """The matrix and proposed pools of ``profiles``: at most ``limit`` pools, or the fewest.

    ``limit`` is at least 1 (the command line checks it). ``vmm`` decides what a pool
    can present (None: every write, no firmware pin); each pool's id derives from its
    model (pool_ids), or is ``previous``'s for the pool that took over most of its hosts.
    IncompatiblePoolError when a type cannot form a pool even alone; NoPartitionError
    when no partition into ``limit`` pools exists (or the heuristic finds none).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"plan: at most {limit} pools asked for, needs at least 1")
    check_host_names(profiles, "plan")
    types = plan_types(profiles)
    blocks = _Blocks(types, catalogue or load_catalogue(), load_errata_table(), vmm, accepted)
    for index in range(len(types)):
        blocks.require_valid(frozenset({index}))
    pairings = tuple(
        blocks.pairing(i, j) for i in range(len(types)) for j in range(i + 1, len(types))
    )
    exact = len(types) <= EXACT_TYPES
    chosen = _exact_partition(blocks, limit) if exact else _merged_partition(blocks, limit)
    if chosen is None:
        raise NoPartitionError(_no_partition(blocks, limit, exact))
    ids = _pool_ids(blocks, chosen, previous)
    pools = tuple(blocks.proposed(pid, block) for pid, block in zip(ids, chosen, strict=True))
    moved: tuple[Move, ...] = ()
    if previous is not None:
        moved = tuple(moves({p.id: frozenset(p.hosts) for p in pools}, previous))
    return Plan(types, pairings, pools, exact, limit, _reasons(blocks, chosen, pools), moved)


def _pool_ids(
    blocks: _Blocks, chosen: Sequence[frozenset[int]], previous: PreviousPlan | None
) -> list[str]:
    """Each pool's id: its model's digest (pool_ids.pool_id), or the previous plan's."""
    ids: list[str] = []
    for block in chosen:
        own = pool_id(blocks.model(block))
        ids.append(own if own not in ids else f"{own}-{len(ids) + 1}")
    if previous is None:
        return ids
    hosts = [frozenset(h for i in block for h in blocks.types[i].hosts) for block in chosen]
    kept = kept_ids(list(zip(ids, hosts, strict=True)), previous)
    return [kept[pid] for pid in ids]


class _Blocks:
    """Sets of plan types (by index) and whether each forms a pool: computed once each."""

    def __init__(
        self,
        types: Sequence[PlanType],
        catalogue: Catalogue,
        table: ErrataTable,
        vmm: Vmm | None,
        accepted: Sequence[str] = (),
    ) -> None:
        self.types = types
        self.accepted = tuple(accepted)  # hazards the operator accepts, by name
        self.catalogue = catalogue
        self.table = table
        self.vmm = vmm
        self.standing = [t.as_host_type() for t in types]
        self.index_of_label = {t.label: n for n, t in enumerate(self.standing)}
        self.outcomes: dict[frozenset[int], PoolModel | IncompatiblePoolError] = {}
        self.costs: dict[frozenset[int], int] = {}

    def outcome(self, block: frozenset[int]) -> PoolModel | IncompatiblePoolError:
        if block not in self.outcomes:
            try:
                members = [self.standing[i] for i in sorted(block)]
                model = baseline_of_types(members, self.catalogue, self.vmm)
                model = accepting(model, self.accepted, self.hosts(block))
                refusals = pool_refusals(model, self.vmm, self.catalogue, self.hosts(block))
                if refusals:
                    raise IncompatiblePoolError(refusals)
                self.outcomes[block] = model
            except IncompatiblePoolError as refused:
                self.outcomes[block] = refused
        return self.outcomes[block]

    def hosts(self, block: frozenset[int]) -> Hosts:
        """The profile of each implementation of ``block``, named by its type's label."""
        members = (self.standing[i] for i in sorted(block))
        return hosts_of(dataclasses.replace(t.profile, host=t.label) for t in members)

    def accepted_losses(self, block: frozenset[int]) -> tuple[Hazard, ...]:
        """The mitigations ``block``'s pool accepts to lose."""
        return accepted_hazards(self.model(block), self.hosts(block))

    def valid(self, block: frozenset[int]) -> bool:
        return isinstance(self.outcome(block), PoolModel)

    def blockers(self, block: frozenset[int]) -> tuple[Blocker, ...]:
        """Why ``block`` forms no pool (empty when it does)."""
        outcome = self.outcome(block)
        if isinstance(outcome, PoolModel):
            return ()
        return tuple(b for b in outcome.blockers if isinstance(b, Blocker))

    def compatible(self, first: int, second: int) -> bool:
        return first == second or self.valid(frozenset({first, second}))

    def require_valid(self, block: frozenset[int]) -> None:
        outcome = self.outcome(block)
        if isinstance(outcome, IncompatiblePoolError):
            raise outcome

    def model(self, block: frozenset[int]) -> PoolModel:
        outcome = self.outcome(block)
        assert isinstance(outcome, PoolModel)
        return outcome

    def cost(self, block: frozenset[int]) -> int:
        """Fields lost, each weighted by the hosts of the types that lose it."""
        if block not in self.costs:
            self.costs[block] = sum(
                len(self.standing[self.index_of_label[label]].hosts)
                for loss in self.model(block).losses
                for label in loss.host_values
            ) + sum(  # an accepted lost mitigation costs like a lost field
                len(self.standing[i].hosts) * len(needed_by(hazards, self.standing[i].profile))
                for hazards in [self.accepted_losses(block)]
                for i in block
            )
        return self.costs[block]

    def pairing(self, first: int, second: int) -> Pairing:
        pair = frozenset({first, second})
        a, b = self.types[first], self.types[second]
        blockers = self.blockers(pair)
        if not blockers:
            # A workaround both types' guests enable anyway is not added, whichever errata
            # (each part's own number for it) bring it.
            alone = set(self.workarounds(frozenset({first}))) & set(
                self.workarounds(frozenset({second}))
            )
            added = tuple(
                i for key, ids in self.workarounds(pair).items() if key not in alone for i in ids
            )
            lost = tuple(h.describe(self.hosts(pair)) for h in self.accepted_losses(pair))
            return Pairing(a, b, self.model(pair).losses, (), "", added, lost)
        return Pairing(a, b, (), blockers, self.deciding(blockers, pair))

    def errata(self, block: frozenset[int]) -> tuple[str, ...]:
        """The ids of the errata and mitigations every guest of ``block``'s pool works around."""
        return tuple(i for ids in self.workarounds(block).values() for i in ids)

    def workarounds(self, block: frozenset[int]) -> dict[str, tuple[str, ...]]:
        """The workarounds every guest of ``block``'s pool enables, by capability."""
        model = self.model(block)
        registers = {**model.id_registers, **model.firmware_registers}
        groups = guest_workarounds(self.table, list(model.target_implementations), registers)
        capability = {e.id: e.capability or e.id for e in self.table.errata}
        return {capability.get(ids[0], ids[0]): ids for ids in groups}

    def deciding(self, blockers: Sequence[Blocker], members: Iterable[int]) -> str:
        """The deciding fields: ``R.A, B differ and are not writable on Linux 6.12``."""
        profiles = [self.standing[i].profile for i in members]
        by_reason: dict[str, list[tuple[str, str]]] = {}
        others: list[str] = []
        for blocker in blockers:
            register = self.catalogue.get(blocker.register)
            if blocker.field is None or register is None:
                others.append(blocker.message)
                continue
            reason = (
                NOT_SETTABLE.format(
                    by="set by no VMM" if self.vmm is None else f"not set by {self.vmm.name}"
                )
                if blocker.reason == "not-settable"
                else _why_differing(register, register.field(blocker.field), profiles)
            )
            by_reason.setdefault(reason, []).append((blocker.register, blocker.field))
        parts = [
            f"{_field_list(fields)} {'differs and is' if len(fields) == 1 else 'differ and are'}"
            f" {reason}"
            for reason, fields in by_reason.items()
        ]
        return "; ".join(parts + others)

    def proposed(self, pool_id: str, block: frozenset[int]) -> ProposedPool:
        """The pool of ``block``, its host groups per host type (writes are alike within)."""
        model = self.model(block)
        groups: list[HostGroup] = []
        for index, group in zip(sorted(block), model.host_groups, strict=True):
            groups.extend(
                HostGroup(t.describe(), t.hosts, group.writes) for t in self.types[index].host_types
            )
        model = dataclasses.replace(model, host_groups=tuple(groups))
        members = tuple(self.types[i] for i in sorted(block))
        lost = tuple(h.describe(self.hosts(block)) for h in self.accepted_losses(block))
        return ProposedPool(pool_id, members, model, self.cost(block), self.errata(block), lost)


def _why_differing(register: Register, fld: Field, profiles: Sequence[HostProfile]) -> str:
    """Why no value of ``fld`` is presentable on every host: where it is not writable."""
    fixed = [p for p in profiles if writable_bits(p, fld.register, register) & fld.mask != fld.mask]
    if not fixed:
        return "writable, but KVM refuses every common value"
    return f"not writable on {' and '.join(sorted({_kernel(p) for p in fixed}))}"


# Registers no VMM sets: a guest keeps its first host's value, which another host refuses.
NOT_SETTABLE = "{by}, and one host's KVM refuses another's value"


def _kernel(profile: HostProfile) -> str:
    if profile.writable_masks is None:
        return "hosts probed without KVM"
    version = profile.kernel_version
    return "an unknown kernel" if version is None else f"Linux {version[0]}.{version[1]}"


def _field_list(fields: Sequence[tuple[str, str]]) -> str:
    """``ID_AA64PFR0_EL1.RAS, AdvSIMD, FP, ID_DFR0_EL1.PerfMon``: each register named once."""
    parts: list[str] = []
    last = None
    for register, name in fields:
        parts.append(name if register == last else f"{register}.{name}")
        last = register
    return ", ".join(parts)


# ------------------------------------------------------------------ the exact search


def _valid_blocks(blocks: _Blocks) -> list[frozenset[int]]:
    """Every set of plan types that forms a pool, grown only from sets that do."""
    count = len(blocks.types)
    found = [frozenset({i}) for i in range(count)]
    known = set(found)
    level = found
    while level:
        grown = []
        for block in level:
            for extra in range(max(block) + 1, count):
                candidate = block | {extra}
                if all(candidate - {member} in known for member in candidate) and blocks.valid(
                    candidate
                ):
                    grown.append(candidate)
        known.update(grown)
        found.extend(grown)
        level = grown
    return found


def _exact_partition(blocks: _Blocks, limit: int | None) -> list[frozenset[int]] | None:
    """The best partition over every valid block (see the module docstring), or None."""
    count = len(blocks.types)
    if limit is None and blocks.valid(frozenset(range(count))):
        return [frozenset(range(count))]  # one pool: the fewest, and the only one
    by_lowest: dict[int, list[frozenset[int]]] = {}
    for block in _valid_blocks(blocks):
        by_lowest.setdefault(min(block), []).append(block)

    @functools.cache
    def best(remaining: frozenset[int]) -> Mapping[int, tuple[int, tuple[frozenset[int], ...]]]:
        """Per number of pools, the cheapest partition of ``remaining``."""
        if not remaining:
            return {0: (0, ())}
        options: dict[int, tuple[int, tuple[frozenset[int], ...]]] = {}
        for block in by_lowest[min(remaining)]:
            if not block <= remaining:
                continue
            cost = blocks.cost(block)
            for pools, (rest_cost, rest) in best(remaining - block).items():
                total = cost + rest_cost
                if pools + 1 not in options or total < options[pools + 1][0]:
                    options[pools + 1] = (total, (block, *rest))
        return options

    options = best(frozenset(range(count)))
    allowed = [(cost, pools, chosen) for pools, (cost, chosen) in options.items()]
    if limit is None:
        fewest = min(pools for _, pools, _ in allowed)
        allowed = [a for a in allowed if a[1] == fewest]
    else:
        allowed = [a for a in allowed if a[1] <= limit]
    if not allowed:
        return None
    _, _, chosen = min(allowed, key=lambda a: (a[0], a[1]))
    return sorted(chosen, key=min)


# ------------------------------------------------------------------ the heuristic


def _merged_partition(blocks: _Blocks, limit: int | None) -> list[frozenset[int]] | None:
    """Merge the cheapest valid pair of pools until ``limit`` (or no merge) is reached."""
    count = len(blocks.types)
    if limit is None and blocks.valid(frozenset(range(count))):
        return [frozenset(range(count))]
    pools = [frozenset({i}) for i in range(count)]
    while limit is None or len(pools) > limit:
        best: tuple[int, int, int] | None = None
        for a in range(len(pools)):
            for b in range(a + 1, len(pools)):
                union = pools[a] | pools[b]
                if not all(blocks.compatible(i, j) for i in pools[a] for j in pools[b]):
                    continue
                if not blocks.valid(union):
                    continue
                added = blocks.cost(union) - blocks.cost(pools[a]) - blocks.cost(pools[b])
                if best is None or added < best[0]:
                    best = (added, a, b)
        if best is None:
            break
        _, a, b = best
        pools = [p for n, p in enumerate(pools) if n not in (a, b)] + [pools[a] | pools[b]]
    if limit is not None and len(pools) > limit:
        return None
    return sorted(pools, key=min)


# ------------------------------------------------------------------ explanations


def _no_partition(blocks: _Blocks, limit: int | None, exact: bool) -> str:
    apart = _pairwise_apart(blocks)
    names = ", ".join(blocks.types[i].id for i in apart)
    bound = f"; {names} cannot share a pool pairwise" if len(apart) > 1 else ""
    how = "exact search" if exact else f"heuristic (exact up to {EXACT_TYPES} types)"
    return f"no partition into {plural(limit or 0, 'pool')} exists ({how}){bound}"


def _pairwise_apart(blocks: _Blocks) -> list[int]:
    """Types no two of which can share a pool (greedy): a lower bound on the number of pools."""
    chosen: list[int] = []
    for index in range(len(blocks.types)):
        if all(not blocks.compatible(index, other) for other in chosen):
            chosen.append(index)
    return chosen


def _reasons(
    blocks: _Blocks, chosen: Sequence[frozenset[int]], pools: Sequence[ProposedPool]
) -> tuple[str, ...]:
    """Why each type is not in each other pool: the deciding fields, or the cost it would add."""
    reasons = []
    for block, pool in zip(chosen, pools, strict=True):
        for index in range(len(blocks.types)):
            if index not in block:
                named = f"{blocks.types[index].id} ({blocks.types[index].label})"
                reasons.append(f"{named} {_why_not_in(blocks, block, index, pool.id)}")
    return tuple(reasons)


def _why_not_in(blocks: _Blocks, block: frozenset[int], index: int, pool_id: str) -> str:
    union = block | {index}
    apart = [m for m in sorted(block) if not blocks.compatible(m, index)]
    if apart:
        member = apart[0]
        pair = frozenset({member, index})
        deciding = blocks.deciding(blocks.blockers(pair), pair)
        return f"cannot join pool {pool_id} (with {blocks.types[member].id}): {deciding}"
    blockers = blocks.blockers(union)
    if blockers:
        return f"cannot join pool {pool_id}: {blocks.deciding(blockers, union)}"
    before = {loss.field for loss in blocks.model(block).losses}
    extra = [
        loss.field.qualified_name for loss in blocks.model(union).losses if loss.field not in before
    ]
    added = blocks.cost(union) - blocks.cost(block)
    lost = f": {', '.join(extra)} would be lost" if extra else ""
    return (
        f"could join pool {pool_id} at a cost of {plural(added, 'host-field')}{lost}; "
        "kept apart to keep more features"
    )


# ------------------------------------------------------------------ schedulers


def pools_served(
    proposal: Plan,
    profiles: Sequence[HostProfile],
    catalogue: Catalogue | None = None,
    vmm: Vmm | None = None,
) -> dict[str, tuple[str, ...]]:
    """Per host, the pools it can serve: those whose model ``check`` passes on it."""
    catalogue = catalogue or load_catalogue()
    served: dict[str, tuple[str, ...]] = {}
    for host_type in group_hosts(profiles):
        pools = tuple(
            pool.id
            for pool in proposal.pools
            if (
                check(pool.model, host_type.profile, catalogue)
                if vmm is None
                else check_with(pool.model, host_type.profile, vmm, catalogue)
            ).ok
        )
        served.update(dict.fromkeys(host_type.hosts, pools))
    return {p.host: served[p.host] for p in profiles}
