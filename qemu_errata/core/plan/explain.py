"""Why the pools are as proposed: why each type is not in each other pool, and why no
partition into N pools exists. Types are named by their hosts, not by ids a refusal
never defined.
"""

from __future__ import annotations

from collections.abc import Sequence

from qemu_errata.core.plan.blocks import Blocks
from qemu_errata.core.plan.types import PlanType
from qemu_errata.core.pool import Blocker
from qemu_errata.core.record import record
from qemu_errata.core.words import plural

# How many types a refusal names before it counts the rest.
NAMED_TYPES = 5


@record
class Apart:
    """Why ``type`` is not in pool ``pool``: it cannot join (``deciding``), or could at a cost."""

    type: PlanType
    pool: str
    other: PlanType | None  # the member it cannot share any pool with, if one
    deciding: str  # the deciding fields ("" when it could join)
    brief: str = ""  # the same in words naming no host, to group types by (Blocks.deciding)
    cost: int = 0  # host-fields joining would add, when it could
    lost: tuple[str, ...] = ()  # the fields joining would lose, when it could

    @property
    def could_join(self) -> bool:
        return not self.deciding

    def describe(self) -> str:
        named = f"{self.type.id} ({self.type.label})"
        if self.could_join:
            lost = f": {', '.join(self.lost)} would be lost" if self.lost else ""
            return (
                f"{named} could join pool {self.pool} at a cost of "
                f"{plural(self.cost, 'host-field')}{lost}; kept apart to keep more features"
            )
        other = f" (with {self.other.id})" if self.other is not None else ""
        return f"{named} cannot join pool {self.pool}{other}: {self.deciding}"


def apart_reasons(
    blocks: Blocks, chosen: Sequence[frozenset[int]], ids: Sequence[str]
) -> tuple[Apart, ...]:
    """Why each type is not in each other pool: the deciding fields, or the cost it would add."""
    return tuple(
        _why_not_in(blocks, block, index, pool_id)
        for block, pool_id in zip(chosen, ids, strict=True)
        for index in range(len(blocks.types))
        if index not in block
    )


def _why_not_in(blocks: Blocks, block: frozenset[int], index: int, pool_id: str) -> Apart:
    plan_type = blocks.types[index]
    union = block | {index}
    apart = [m for m in sorted(block) if not blocks.compatible(m, index)]
    if apart:
        pair = frozenset({apart[0], index})
        deciding, brief = blocks.decidings(blocks.blockers(pair), sorted(pair))
        return Apart(plan_type, pool_id, blocks.types[apart[0]], deciding, brief)
    blockers = blocks.blockers(union)
    if blockers:
        deciding, brief = blocks.decidings(blockers, sorted(union))
        return Apart(plan_type, pool_id, None, deciding, brief)
    before = blocks.fit(block).lost
    extra = tuple(sorted(blocks.fit(union).lost - before))
    return Apart(plan_type, pool_id, None, "", "", blocks.cost(union) - blocks.cost(block), extra)


def no_partition(
    blocks: Blocks, limit: int | None, how: str, apart: Sequence[int]
) -> tuple[str, tuple[Blocker, ...]]:
    """The refusal's words and blockers: no partition into ``limit`` pools exists, and the
    types (named by their hosts) no two of which can share a pool, with each pair's blockers."""
    message = f"no partition into {plural(limit or 0, 'pool')} exists ({how})"
    if len(apart) <= 1:
        return message, ()
    named = [blocks.types[i].named() for i in apart[:NAMED_TYPES]]
    more = len(apart) - len(named)
    names = "; ".join(named) + (f"; and {more} more" if more else "")
    blockers = tuple(
        b
        for n, first in enumerate(apart)
        for second in apart[n + 1 :]
        for b in blocks.blockers(frozenset({first, second}))
    )
    return f"{message}: {len(apart)} types cannot share a pool pairwise: {names}", blockers
