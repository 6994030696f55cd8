"""The ``plan`` report: the plan (plan/1) or its refusal (plan-refusal/1) in JSON, and what
schedulers are told: Kubernetes node labels, Nova provider traits (plan_text: in words).

Pure: the caller computes the plan (core/plan) and prints or writes these. JSON names
hosts by their names: a loss's or a blocker's values are keyed by the first host of
each type (the type's ``hosts`` lists the others).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qemu_errata.core.hosttypes import first_hosts, group_hosts
from qemu_errata.core.plan import Pairing, Plan, PlanType, ProposedPool, plan_types
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import IncompatiblePoolError, NoPartitionError
from qemu_errata.reports.blockers import blocker_json

PLAN_FORMAT = "qemu-errata/plan/1"
PLAN_REFUSAL_FORMAT = "qemu-errata/plan-refusal/1"
# Kubernetes node label naming a pool a node can serve (value "true").
KUBERNETES_LABEL = "qemu-errata.io/pool-{id}"
# Nova placement custom trait naming a pool a compute node can serve.
NOVA_TRAIT = "CUSTOM_QEMU_ERRATA_POOL_{id}"
NOVA_SCHEMA_VERSION = "1.0"


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


def plan_json(plan: Plan, *, detail: bool = False) -> dict[str, Any]:
    """The plan document: types, the pools and why; the matrix of pairings with ``detail``."""
    keys = {t.label: t.hosts[0] for t in plan.types}
    document = {
        "format": PLAN_FORMAT,
        "search": plan.search(),
        "types": [_type_json(t) for t in plan.types],
        "pools": [_pool_json(p, keys) for p in plan.pools],
        "reasons": [reason.describe() for reason in plan.reasons],
        "moves": [{"host": m.host, "from": m.before, "to": m.after} for m in plan.moves],
    }
    if detail:
        document["matrix"] = [_pairing_json(p, keys) for p in plan.pairings]
    return document


def plan_refusal_json(
    profiles: Sequence[HostProfile], refused: IncompatiblePoolError | NoPartitionError
) -> dict[str, Any]:
    """Why no plan: the message, and the blockers (of a type that cannot pool even alone, or
    of each pair of the types no two of which can share a pool)."""
    return {
        "format": PLAN_REFUSAL_FORMAT,
        "hosts": [p.host for p in profiles],
        "message": str(refused),
        "blockers": [blocker_json(b, _first_hosts(profiles)) for b in refused.blockers],
    }


def _first_hosts(profiles: Sequence[HostProfile]) -> dict[str, str]:
    """Labels of host and plan types (``h1 (+3 alike)``) to the host names they start with."""
    hosts = [t.hosts for t in group_hosts(profiles)] + [t.hosts for t in plan_types(profiles)]
    return first_hosts(hosts)


def _type_json(plan_type: PlanType) -> dict[str, Any]:
    return {
        "id": plan_type.id,
        "description": plan_type.describe(),
        "hosts": list(plan_type.hosts),
        "host_types": [
            {"description": t.describe(), "hosts": list(t.hosts)} for t in plan_type.host_types
        ],
    }


def _pairing_json(pairing: Pairing, keys: Mapping[str, str]) -> dict[str, Any]:
    return {
        "types": [pairing.first.id, pairing.second.id],
        "compatible": pairing.compatible,
        "loses": [loss.to_json(keys) for loss in pairing.losses],
        "blockers": [blocker_json(b, keys) for b in pairing.blockers],
        "deciding": pairing.deciding,
        "errata": list(pairing.errata),
        "lost_mitigations": list(pairing.lost),
    }


def _pool_json(pool: ProposedPool, keys: Mapping[str, str]) -> dict[str, Any]:
    model = pool.model.to_json()
    model["losses"] = [loss.to_json(keys) for loss in pool.model.losses]
    return {
        "id": pool.id,
        "hosts": list(pool.hosts),
        "types": [t.id for t in pool.types],
        "loses": model["losses"],
        "cost": pool.cost,
        "errata": list(pool.errata),
        "lost_mitigations": list(pool.lost),
        "model": model,
    }
