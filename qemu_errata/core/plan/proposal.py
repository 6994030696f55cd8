"""The plan: the proposed pools, the matrix of pairs behind them, and why.

The cost of a pool is the number of fields its hosts lose, weighted by hosts: for
each field the pool presents below a type's own value, that type's host count (see
search for how the partition is chosen). The pairwise matrix is computed only when
asked for (``plan --detail``, the picture): a fleet of a hundred types has 4,950 pairs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from qemu_errata.core.catalogue import Catalogue, load_catalogue
from qemu_errata.core.errata import load_errata_table
from qemu_errata.core.hosttypes import group_hosts
from qemu_errata.core.plan.blocks import Blocks
from qemu_errata.core.plan.explain import Apart, apart_reasons, no_partition
from qemu_errata.core.plan.search import exact_partition, merged_partition, pairwise_apart
from qemu_errata.core.plan.types import PlanType, plan_types
from qemu_errata.core.pool import Blocker, Loss, PoolModel, check, check_host_names
from qemu_errata.core.pool_ids import Move, PreviousPlan, kept_ids, moves, pool_id
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import field, record
from qemu_errata.core.vmm_fit import check_with
from qemu_errata.core.vmms import Vmm
from qemu_errata.core.words import plural
from qemu_errata.errors import NoPartitionError

# Up to this many plan types the partition is exact; beyond, the merging heuristic.
EXACT_TYPES = 10


@record
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


@record
class Cell:
    """One cell of the matrix, cheaply: can the pair share a pool, the fields it loses."""

    compatible: bool
    lost_fields: int
    brief: str  # why not, in the deciding words that name no host ("" when it can)


@record
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


@record
class Plan:
    """The proposed pools of the plan types; the matrix and the reasons when asked."""

    types: tuple[PlanType, ...]
    pools: tuple[ProposedPool, ...]
    exact: bool
    limit: int | None
    # Hosts whose pool differs from the previous plan's (plan --previous).
    moves: tuple[Move, ...] = ()
    blocks: Blocks | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def reasons(self) -> tuple[Apart, ...]:
        """Why each type is not in each other pool."""
        chosen = [frozenset(self.types.index(t) for t in pool.types) for pool in self.pools]
        return apart_reasons(self._blocks, chosen, [pool.id for pool in self.pools])

    @functools.cached_property
    def pairings(self) -> tuple[Pairing, ...]:
        """Every pair of types, row by row above the diagonal (a whole baseline each)."""
        return tuple(
            self.pairing(first, second)
            for n, first in enumerate(self.types)
            for second in self.types[n + 1 :]
        )

    def pairing(self, first: PlanType, second: PlanType) -> Pairing:
        """The pairing of two different types: what they lose together, or why not."""
        i, j = sorted((self.types.index(first), self.types.index(second)))
        pair = frozenset({i, j})
        blocks = self._blocks
        a, b = self.types[i], self.types[j]
        blockers = blocks.blockers(pair)
        if blockers:
            return Pairing(a, b, (), blockers, blocks.deciding(blockers, pair))
        losses = blocks.model(pair).losses
        lost = blocks.accepted_losses(pair)
        return Pairing(a, b, losses, (), "", blocks.added_errata(i, j), lost)

    def cell(self, first: PlanType, second: PlanType) -> Cell:
        """The pair of two different types as the picture shows it (no whole baseline)."""
        pair = frozenset({self.types.index(first), self.types.index(second)})
        blocks = self._blocks
        fit = blocks.fit(pair)
        if fit.valid:
            return Cell(True, len(fit.lost), "")
        return Cell(False, 0, blocks.deciding(fit.blockers, sorted(pair), brief=True))

    def search(self) -> str:
        """How the pools were found, in words."""
        if self.exact:
            return f"exact search over {plural(len(self.types), 'type')}"
        return (
            f"heuristic over {plural(len(self.types), 'type')} (exact up to {EXACT_TYPES}): "
            "merge the two pools that can share and add the least cost, until "
            + ("no two can" if self.limit is None else f"at most {self.limit} remain")
        )

    @property
    def _blocks(self) -> Blocks:
        assert self.blocks is not None, "a plan made by plan() knows its blocks"
        return self.blocks


def plan(
    profiles: Sequence[HostProfile],
    limit: int | None = None,
    catalogue: Catalogue | None = None,
    *,
    vmm: Vmm | None = None,
    previous: PreviousPlan | None = None,
    accepted: Sequence[str] = (),
) -> Plan:
    """The proposed pools of ``profiles``: at most ``limit`` pools, or the fewest.

    ``limit`` is at least 1 (the command line checks it). ``vmm`` decides what a pool
    can present (None: every write, no firmware pin); each pool's id derives from its
    model (pool_ids), or is ``previous``'s for the pool that took over most of its hosts.
    ``accepted`` names the lost mitigations (hazards) a pool may have.
    IncompatiblePoolError when a type cannot form a pool even alone; NoPartitionError
    when no partition into ``limit`` pools exists (or the heuristic finds none).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"plan: at most {limit} pools asked for, needs at least 1")
    check_host_names(profiles, "plan")
    types = plan_types(profiles)
    blocks = Blocks(types, catalogue or load_catalogue(), load_errata_table(), vmm, accepted)
    for index in range(len(types)):
        blocks.require_valid(index)
    exact = len(types) <= EXACT_TYPES
    chosen = exact_partition(blocks, limit) if exact else merged_partition(blocks, limit)
    if chosen is None:
        how = "exact search" if exact else f"heuristic (exact up to {EXACT_TYPES} types)"
        message, blockers = no_partition(blocks, limit, how, pairwise_apart(blocks))
        raise NoPartitionError(message, blockers)
    ids = _pool_ids(blocks, chosen, previous)
    pools = tuple(
        ProposedPool(
            pid,
            tuple(types[i] for i in sorted(block)),
            blocks.proposed_groups(block),
            blocks.cost(block),
            blocks.errata(block),
            blocks.accepted_losses(block),
        )
        for pid, block in zip(ids, chosen, strict=True)
    )
    moved: tuple[Move, ...] = ()
    if previous is not None:
        moved = tuple(moves({p.id: frozenset(p.hosts) for p in pools}, previous))
    return Plan(types, pools, exact, limit, moved, blocks)


def _pool_ids(
    blocks: Blocks, chosen: Sequence[frozenset[int]], previous: PreviousPlan | None
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
