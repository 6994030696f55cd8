"""The ``plan`` report: the plan (plan/1) or its refusal (plan-refusal/1) in JSON, the plan
in words, and what schedulers are told: Kubernetes node labels, Nova provider traits.

Pure: the caller computes the plan (core/plan.py) and prints or writes these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qemu_errata.core.plan import Pairing, Plan, PlanType, ProposedPool
from qemu_errata.core.pool import Loss
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.words import plural
from qemu_errata.errors import IncompatiblePoolError, NoPartitionError
from qemu_errata.reports.blockers import blocker_json

PLAN_FORMAT = "qemu-errata/plan/1"
PLAN_REFUSAL_FORMAT = "qemu-errata/plan-refusal/1"
# Kubernetes node label naming a pool a node can serve (value "true").
KUBERNETES_LABEL = "qemu-errata.io/pool-{id}"
# Nova placement custom trait naming a pool a compute node can serve.
NOVA_TRAIT = "CUSTOM_QEMU_ERRATA_POOL_{id}"
NOVA_SCHEMA_VERSION = "1.0"


def plan_lines(plan: Plan) -> list[str]:
    """The types, the matrix, what each pair loses or why not, the pools and why."""
    ids = {t.label: t.id for t in plan.types}
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
                lost = "; ".join(_loss_words(loss, ids) for loss in pairing.losses)
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
        lost = "; ".join(_loss_words(loss, ids) for loss in pool.model.losses)
        lines.append(
            f"  pool {pool.id}: {members} ({plural(len(pool.hosts), 'host')}); "
            f"loses {lost or 'nothing'}"
        )
        lines.append(f"    every guest works around: {', '.join(pool.errata) or 'no erratum'}")
        lines.extend(f"    ACCEPTED: {words}" for words in pool.lost)
    if plan.reasons:
        lines.append("Why the pools are not otherwise:")
        lines.extend(f"  {reason}" for reason in plan.reasons)
    if plan.moves:
        lines.append(f"Hosts that change pool ({plural(len(plan.moves), 'host')}):")
        lines.extend(f"  {move.describe()}" for move in plan.moves)
    lines.append(
        "Errata: those a Linux >= 6.15 guest enables for the pool's target list "
        "(`qemu-errata errata MODEL` explains each)"
    )
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


def _loss_words(loss: Loss, ids: Mapping[str, str]) -> str:
    """``ID_AA64ISAR0_EL1.DP: NI (0x0), T2 has IMP (0x1)``."""
    field = loss.field
    hosts = ", ".join(
        f"{ids.get(label, label)} has {field.describe(value)}"
        for label, value in loss.host_values.items()
    )
    return f"{field.qualified_name}: {field.describe(loss.pool_value)}, {hosts}"


def kubernetes_labels(served: Mapping[str, Sequence[str]], known: Sequence[str] = ()) -> str:
    """One line per host: the host name, its labels (``qemu-errata.io/pool-3f9a2c1b=true``),
    then the removal (``qemu-errata.io/pool-ID-``, kubectl's syntax) of every other pool
    of the plan or of ``known`` (a previous plan's), so that a node loses labels it no
    longer has."""
    every = sorted({p for pools in served.values() for p in pools} | set(known))
    return "".join(
        " ".join(
            [
                host,
                *(f"{KUBERNETES_LABEL.format(id=p)}=true" for p in pools),
                *(f"{KUBERNETES_LABEL.format(id=p)}-" for p in every if p not in pools),
            ]
        )
        + "\n"
        for host, pools in served.items()
    )


def nova_provider_config(served: Mapping[str, Sequence[str]]) -> str:
    """A Nova provider config file (schema 1.0): per compute node, the traits of its pools.

    Written without a YAML library: every scalar is single-quoted (a quote
    inside is doubled), which YAML reads as the plain string. The file replaces the
    previous one whole, so a pool a node no longer serves needs no removal. Traits are
    upper case.
    """
    lines = ["meta:", f"  schema_version: {_quoted(NOVA_SCHEMA_VERSION)}", "providers:"]
    for host, pools in served.items():
        lines += [
            "  - identification:",
            f"      name: {_quoted(host)}",
            "    traits:",
            "      additional:",
            *(f"        - {_quoted(NOVA_TRAIT.format(id=p.upper()))}" for p in pools),
        ]
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan document: types, the matrix of pairings, the pools and why."""
    return {
        "format": PLAN_FORMAT,
        "search": plan.search(),
        "types": [_type_json(t) for t in plan.types],
        "matrix": [_pairing_json(p) for p in plan.pairings],
        "pools": [_pool_json(p) for p in plan.pools],
        "reasons": list(plan.reasons),
        "moves": [{"host": m.host, "from": m.before, "to": m.after} for m in plan.moves],
    }


def plan_refusal_json(
    profiles: Sequence[HostProfile], refused: IncompatiblePoolError | NoPartitionError
) -> dict[str, Any]:
    """Why no plan: the message, and the blockers of a type that cannot pool even alone."""
    blockers = refused.blockers if isinstance(refused, IncompatiblePoolError) else ()
    return {
        "format": PLAN_REFUSAL_FORMAT,
        "hosts": [p.host for p in profiles],
        "message": str(refused),
        "blockers": [blocker_json(b) for b in blockers],
    }


def _type_json(plan_type: PlanType) -> dict[str, Any]:
    return {
        "id": plan_type.id,
        "description": plan_type.describe(),
        "hosts": list(plan_type.hosts),
        "host_types": [
            {"description": t.describe(), "hosts": list(t.hosts)} for t in plan_type.host_types
        ],
    }


def _pairing_json(pairing: Pairing) -> dict[str, Any]:
    return {
        "types": [pairing.first.id, pairing.second.id],
        "compatible": pairing.compatible,
        "loses": [loss.to_json() for loss in pairing.losses],
        "blockers": [blocker_json(b) for b in pairing.blockers],
        "deciding": pairing.deciding,
        "errata": list(pairing.errata),
        "lost_mitigations": list(pairing.lost),
    }


def _pool_json(pool: ProposedPool) -> dict[str, Any]:
    return {
        "id": pool.id,
        "hosts": list(pool.hosts),
        "types": [t.id for t in pool.types],
        "loses": [loss.to_json() for loss in pool.model.losses],
        "cost": pool.cost,
        "errata": list(pool.errata),
        "lost_mitigations": list(pool.lost),
        "model": pool.model.to_json(),
    }
