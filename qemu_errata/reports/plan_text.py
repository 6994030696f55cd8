"""The ``plan`` report in words: a summary that stays short at any fleet size, and the
detail behind it (``plan --detail``: every type, the matrix of pairs, every reason).

Pure: the caller computes the plan (core/plan) and prints these. The summary names
types by their hosts ("40 hosts like rack01-n1-h000 (Arm Neoverse-N1 r4p1, Linux
6.12)"); the detail defines the ids (T1, T2, ...) its matrix uses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qemu_errata.core.plan import Plan, PlanType, ProposedPool
from qemu_errata.core.pool import Loss
from qemu_errata.core.pool_ids import Move
from qemu_errata.core.words import plural

# The summary's bounds (under 60 lines whatever the fleet): pools shown one by one (the
# largest), types named per pool, reasons, moves.
SUMMARY_POOLS = 16
NAMED_PER_POOL = 2
SUMMARY_REASONS = 8
SUMMARY_MOVES = 8
DETAIL_HINT = (
    "`qemu-errata plan --detail` prints every type, the matrix of pairs, every reason and "
    "the errata each pool's guests work around"
)
ERRATA_NOTE = (
    "Errata: those a Linux >= 6.15 guest enables for the pool's target list "
    "(`qemu-errata errata MODEL` explains each)"
)


def plan_summary(plan: Plan) -> list[str]:
    """The pools, their host types and counts, what each loses, why types are apart."""
    hosts = sum(len(t.hosts) for t in plan.types)
    fewest = "the fewest possible" if plan.limit is None else f"at most {plan.limit}"
    lines = [
        f"{plural(hosts, 'host')} of {plural(len(plan.types), 'type')} in "
        f"{plural(len(plan.pools), 'pool')} ({fewest}; {plan.search()}):"
    ]
    shown = {pool.id for pool in _largest(plan.pools, SUMMARY_POOLS)}
    by_label = {t.label: t for t in plan.types}
    for pool in plan.pools:
        if pool.id in shown:
            lines.extend(_pool_summary(pool, by_label))
    rest = [pool for pool in plan.pools if pool.id not in shown]
    if rest:
        count = sum(len(pool.hosts) for pool in rest)
        lines.append(
            f"  and {plural(len(rest), 'more pool')} of {plural(count, 'host')} in all: "
            f"{', '.join(pool.id for pool in rest[:6])}{', ...' if len(rest) > 6 else ''}"
        )
    lines.extend(_apart_summary(plan))
    if plan.moves:
        lines.extend(_moves_summary(plan.moves))
    lines.append(DETAIL_HINT)
    return lines


def _largest(pools: Sequence[ProposedPool], count: int) -> list[ProposedPool]:
    return sorted(pools, key=lambda pool: -len(pool.hosts))[:count]


def _pool_summary(pool: ProposedPool, by_label: Mapping[str, PlanType]) -> list[str]:
    """``pool ID: 44 hosts of 2 types: 40 hosts like ... (...), 4 hosts like ... (...)``."""
    types = sorted(pool.types, key=lambda t: -len(t.hosts))
    named = ", ".join(t.named() for t in types[:NAMED_PER_POOL])
    more = len(types) - NAMED_PER_POOL
    others = f" (+{plural(more, 'more type')})" if more > 0 else ""
    kinds = f"{plural(len(pool.hosts), 'host')} of {plural(len(types), 'type')}"
    head = f"  pool {pool.id}: {kinds}: {named}{others}"
    accepted = [f"    ACCEPTED: {words}" for words in pool.lost]
    if not pool.model.losses:
        return [head + "; loses nothing", *accepted]
    losing = {label for loss in pool.model.losses for label in loss.host_values}
    hosts = sum(len(by_label[label].hosts) for label in losing if label in by_label)
    fields = _field_names([loss for loss in pool.model.losses])
    lost = f"    loses {fields} ({plural(hosts, 'host')} of {plural(len(losing), 'type')})"
    return [head, lost, *accepted]


def _field_names(losses: Sequence[Loss], shown: int = 6) -> str:
    """``ID_AA64ISAR0_EL1.AES, SHA1, ID_AA64PFR1_EL1.SSBS`` (+ how many more)."""
    parts: list[str] = []
    last = None
    for loss in losses[:shown]:
        register, name = loss.field.register, loss.field.name
        parts.append(name if register == last else f"{register}.{name}")
        last = register
    more = len(losses) - shown
    return ", ".join(parts) + (f" and {more} more fields" if more > 0 else "")


def _apart_summary(plan: Plan) -> list[str]:
    """Why types are not in the other pools: each deciding reason once, with the types it
    keeps out (reasons keeping out most types first)."""
    # Per reason: the types it keeps out, and the pools it keeps each of them out of.
    groups: dict[str, tuple[dict[str, PlanType], dict[str, set[str]]]] = {}
    costly: dict[str, PlanType] = {}
    for apart in plan.reasons:
        if apart.could_join:
            costly[apart.type.id] = apart.type
            continue
        for clause in apart.brief.split("; "):
            types, pools = groups.setdefault(clause, ({}, {}))
            types[apart.type.id] = apart.type
            pools.setdefault(apart.type.id, set()).add(apart.pool)
    if not groups and not costly:
        return []
    lines = ["Why types are not in another pool:"]
    ordered = sorted(
        groups.items(),
        key=lambda item: (-len(item[1][0]), -sum(len(p) for p in item[1][1].values())),
    )
    for clause, (types, pools) in ordered[:SUMMARY_REASONS]:
        examples = list(types.values())[:NAMED_PER_POOL]
        more = len(types) - len(examples)
        named = "; ".join(t.like() for t in examples) + (f"; +{more} more" if more > 0 else "")
        lines.append(
            f"  {clause}: keeps {plural(len(types), 'type')} ({named}) "
            f"{_out_of(pools, len(plan.pools))}"
        )
    if len(ordered) > SUMMARY_REASONS:
        lines.append(f"  and {plural(len(ordered) - SUMMARY_REASONS, 'other reason')}")
    if costly:
        lines.append(
            f"  {plural(len(costly), 'type')} could join another pool at a cost; kept apart to "
            "keep more features"
        )
    return lines


def _out_of(pools_of_type: Mapping[str, set[str]], pools: int) -> str:
    """How many other pools a reason keeps each of its types out of (of ``pools`` in all)."""
    counts = sorted({len(kept_out) for kept_out in pools_of_type.values()})
    if counts == [pools - 1]:
        return "out of the other pool" if pools == 2 else "out of every other pool"
    each = " each" if len(pools_of_type) > 1 else ""
    if len(counts) == 1:
        return f"out of {plural(counts[0], 'other pool')}{each}"
    return f"out of {counts[0]} to {plural(counts[-1], 'other pool')}{each}"


def _moves_summary(moved: Sequence[Move]) -> list[str]:
    """Hosts that change pool, grouped by where from and where to."""
    groups: dict[tuple[str | None, str | None], list[str]] = {}
    for move in moved:
        groups.setdefault((move.before, move.after), []).append(move.host)
    lines = [f"Hosts that change pool ({plural(len(moved), 'host')}):"]
    for (before, after), hosts in list(groups.items())[:SUMMARY_MOVES]:
        source = "new" if before is None else f"pool {before}"
        target = "gone" if after is None else f"pool {after}"
        like = hosts[0] if len(hosts) == 1 else f"{len(hosts)} hosts like {hosts[0]}"
        lines.append(f"  {like}: {source} -> {target}")
    if len(groups) > SUMMARY_MOVES:
        lines.append(f"  and {plural(len(groups) - SUMMARY_MOVES, 'other move')}")
    return lines


def plan_detail(plan: Plan) -> list[str]:
    """The types, the matrix, what each pair loses or why not, the pools and why."""
    ids = {t.label: t for t in plan.types}
    hosts = sum(len(t.hosts) for t in plan.types)
    lines = [f"{plural(hosts, 'host')} of {plural(len(plan.types), 'type')}:"]
    lines.extend(f"  {t.describe()}" for t in plan.types)
    if len(plan.types) > 1:
        lines.append("Compatibility (number: fields the pair loses; x: cannot share a pool):")
        lines.extend(_matrix_lines(plan))
        lines.append("What each pair loses, or why it cannot share a pool:")
        for pairing in plan.pairings:
            pair = f"{pairing.first.id} + {pairing.second.id}"
            if pairing.compatible:
                lost = "; ".join(loss_words(loss, ids) for loss in pairing.losses)
                errata = ", ".join(pairing.errata) or "none"
                lines.append(
                    f"  {pair}: can share a pool; loses {lost or 'nothing'}; errata added: {errata}"
                    + "".join(f"; ACCEPTED: {words}" for words in pairing.lost)
                )
            else:
                lines.append(f"  {pair}: cannot share a pool: {pairing.deciding}")
    fewest = "the fewest possible" if plan.limit is None else f"at most {plan.limit}"
    lines.append(f"Proposed: {plural(len(plan.pools), 'pool')} ({fewest}; {plan.search()}):")
    for pool in plan.pools:
        members = ", ".join(t.id for t in pool.types)
        lost = "; ".join(loss_words(loss, ids) for loss in pool.model.losses)
        lines.append(
            f"  pool {pool.id}: {members} ({plural(len(pool.hosts), 'host')}); "
            f"loses {lost or 'nothing'}"
        )
        lines.append(f"    every guest works around: {', '.join(pool.errata) or 'no erratum'}")
        lines.extend(f"    ACCEPTED: {words}" for words in pool.lost)
    if plan.reasons:
        lines.append("Why the pools are not otherwise:")
        lines.extend(f"  {reason.describe()}" for reason in plan.reasons)
    if plan.moves:
        lines.append(f"Hosts that change pool ({plural(len(plan.moves), 'host')}):")
        lines.extend(f"  {move.describe()}" for move in plan.moves)
    lines.append(ERRATA_NOTE)
    return lines


def _matrix_lines(plan: Plan) -> list[str]:
    width = max(len(t.id) for t in plan.types) + 1
    lines = ["  " + " " * width + "".join(t.id.rjust(width) for t in plan.types)]
    for row in plan.types:
        cells = []
        for column in plan.types:
            if row is column:
                cells.append("-")
                continue
            pairing = plan.pairing(row, column)
            cells.append(str(len(pairing.losses)) if pairing.compatible else "x")
        lines.append("  " + row.id.ljust(width) + "".join(c.rjust(width) for c in cells))
    return lines


def loss_words(loss: Loss, types: Mapping[str, PlanType]) -> str:
    """``ID_AA64ISAR0_EL1.DP: NI (0x0), T2 has IMP (0x1)``; types of one value grouped:
    ``84 hosts of 21 types (T2, T5, ...) have PMULL (0x2)``."""
    field = loss.field
    by_value: dict[int, list[str]] = {}
    for label, value in loss.host_values.items():
        by_value.setdefault(value, []).append(label)
    parts = []
    for value, labels in by_value.items():
        if len(labels) == 1:
            name = types[labels[0]].id if labels[0] in types else labels[0]
            parts.append(f"{name} has {field.describe(value)}")
            continue
        members = [types[label] for label in labels if label in types]
        count = sum(len(t.hosts) for t in members)
        shown = ", ".join(t.id for t in members[:3]) + (", ..." if len(members) > 3 else "")
        parts.append(
            f"{plural(count, 'host')} of {len(labels)} types ({shown}) have {field.describe(value)}"
        )
    return f"{field.qualified_name}: {field.describe(loss.pool_value)}, {', '.join(parts)}"
