"""Partitions of the plan types into pools: the exact search, and the merging heuristic.

The proposal minimises, for the default, the number of pools and then the cost; with
a limit of N pools, the cost and then the number of pools. It is exact up to
``exact_types`` plan types (every valid block is found, growing blocks only from
valid ones: a set that cannot pool makes every superset fail, and a pair that cannot
pool rules out every block holding both). Beyond, a stated heuristic: start from one
pool per type and merge, again and again, the two pools whose union is valid and adds
the least cost.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from qemu_errata.core.plan.blocks import Blocks

Partition = list[frozenset[int]]


def valid_blocks(blocks: Blocks) -> list[frozenset[int]]:
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


def exact_partition(blocks: Blocks, limit: int | None) -> Partition | None:
    """The best partition over every valid block (see the module docstring), or None."""
    count = len(blocks.types)
    if limit is None and blocks.valid(frozenset(range(count))):
        return [frozenset(range(count))]  # one pool: the fewest, and the only one
    by_lowest: dict[int, list[frozenset[int]]] = {}
    for block in valid_blocks(blocks):
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


def merged_partition(blocks: Blocks, limit: int | None) -> Partition | None:
    """Merge the cheapest valid pair of pools until ``limit`` (or no merge) is reached.

    What merging two pools adds is computed once per pair of pools: a merge changes
    only the pairs that hold the merged pool.
    """
    count = len(blocks.types)
    if limit is None and blocks.valid(frozenset(range(count))):
        return [frozenset(range(count))]
    pools = [frozenset({i}) for i in range(count)]
    added: dict[tuple[frozenset[int], frozenset[int]], int | None] = {}
    while limit is None or len(pools) > limit:
        best: tuple[int, int, int] | None = None
        for a in range(len(pools)):
            for b in range(a + 1, len(pools)):
                key = (pools[a], pools[b])
                if key not in added:
                    added[key] = _merge_cost(blocks, pools[a], pools[b])
                cost = added[key]
                if cost is not None and (best is None or cost < best[0]):
                    best = (cost, a, b)
        if best is None:
            break
        _, a, b = best
        pools = [p for n, p in enumerate(pools) if n not in (a, b)] + [pools[a] | pools[b]]
    if limit is not None and len(pools) > limit:
        return None
    return sorted(pools, key=min)


def _merge_cost(blocks: Blocks, first: frozenset[int], second: frozenset[int]) -> int | None:
    """The cost merging two pools adds (None: they cannot merge)."""
    if not all(blocks.compatible(i, j) for i in first for j in second):
        return None
    union = first | second
    if not blocks.valid(union):
        return None
    return blocks.cost(union) - blocks.cost(first) - blocks.cost(second)


def pairwise_apart(blocks: Blocks) -> list[int]:
    """Types no two of which can share a pool (greedy): a lower bound on the number of pools."""
    chosen: list[int] = []
    for index in range(len(blocks.types)):
        if all(not blocks.compatible(index, other) for other in chosen):
            chosen.append(index)
    return chosen
