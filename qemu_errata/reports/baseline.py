"""The ``baseline`` report: the pool model in words, or its refusal (baseline-refusal/1).

``baseline --json`` prints baseline/1: the pool model document, exactly as
``-o`` writes it (pool-model/1), and the errata cost beside it; a refusal is
baseline-refusal/1.
"""

from __future__ import annotations

from collections.abc import Sequence

from qemu_errata.core.hosttypes import first_hosts, group_hosts
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.words import plural
from qemu_errata.errors import IncompatiblePoolError
from qemu_errata.reports.blockers import blocker_json
from qemu_errata.reports.errata_cost import Cost, cost_json, cost_lines

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

BASELINE_FORMAT = "qemu-errata/baseline/1"
REFUSAL_FORMAT = "qemu-errata/baseline-refusal/1"


def baseline_json(model: PoolModel, cost: Cost) -> dict[str, Any]:
    """The model's document and what each target alone adds to every guest."""
    return {"format": BASELINE_FORMAT, "model": model.to_json(), "errata_cost": cost_json(cost)}


def refusal_json(profiles: Sequence[HostProfile], refused: IncompatiblePoolError) -> dict[str, Any]:
    names = first_hosts(t.hosts for t in group_hosts(profiles))
    return {
        "format": REFUSAL_FORMAT,
        "hosts": [p.host for p in profiles],
        "blockers": [blocker_json(b, names) for b in refused.blockers],
    }


def refusal_lines(
    profiles: Sequence[HostProfile], refused: IncompatiblePoolError, what_to_do: str
) -> list[str]:
    lines = [f"The pool of {hosts_in_words([p.host for p in profiles], profiles)} is refused:"]
    lines.extend(f"  {blocker.message}" for blocker in refused.blockers)
    return [*lines, what_to_do]


def accepted_lines(model: PoolModel) -> list[str]:
    """The lost mitigations the model accepts, loudly; none: no line."""
    if not model.accepted_lost_mitigations:
        return []
    return [
        "ACCEPTED lost mitigations (guests skip them on hosts that need them; "
        f"`errata MODEL` names those hosts): {', '.join(model.accepted_lost_mitigations)}"
    ]


def describe_model(model: PoolModel, output: str | None, cost: Cost, vmm: str) -> str:
    lines = _hosts_lines(model)
    lines.append("Target implementations (guests apply the errata workarounds of each):")
    for target in model.target_implementations:
        lines.append(f"  {Midr(target.midr).describe()}, {target.revidr_aidr()}")
    lines.append(
        "Errata workarounds each host type alone adds to every guest (`errata MODEL` names them):"
    )
    lines.extend(cost_lines(cost))
    frequency = model.timer_frequency_hz
    lines.append(f"Timer frequency: {'unknown' if frequency is None else f'{frequency} Hz'}")
    lines.append(f"What the pool loses ({plural(len(model.losses), 'field')}):")
    lines.extend(f"  {loss.explain()}" for loss in model.losses)
    lines.append("Registers the VMM writes on each host:")
    for group in model.host_groups:
        lines.append(f"  {group.label}: {', '.join(group.writes) or 'none'}")
    lines.extend(f"Note: {note}" for note in model.notes)
    lines.extend(accepted_lines(model))
    lines.append(f"Decided for the VMM {vmm}")
    if output:
        lines.append(f"Pool model written to {output}")
    return "\n".join(lines)


# Up to this many hosts a report names them all on one line; past it, type by type.
NAMED_HOSTS = 8
# Past NAMED_HOSTS, how many types a header names.
NAMED_TYPES = 4


def hosts_in_words(hosts: Sequence[str], profiles: Sequence[HostProfile]) -> str:
    """Every host when few (``h1, h2``); else by type: ``120 hosts of 3 types: 40 hosts like
    rack01-n1-h000, 40 hosts like rack01-a76-h000, ...``."""
    if len(hosts) <= NAMED_HOSTS:
        return ", ".join(hosts)
    types = group_hosts(profiles)
    named = [
        t.hosts[0] if len(t.hosts) == 1 else f"{len(t.hosts)} hosts like {t.hosts[0]}"
        for t in types[:NAMED_TYPES]
    ]
    more = len(types) - len(named)
    rest = f" and {plural(more, 'more type')}" if more else ""
    return (
        f"{plural(len(hosts), 'host')} of {plural(len(types), 'type')} ({', '.join(named)}{rest})"
    )


def _hosts_lines(model: PoolModel) -> list[str]:
    hosts = model.hosts
    if len(hosts) <= NAMED_HOSTS:
        return [f"Pool of {plural(len(hosts), 'host')}: {', '.join(hosts)}"]
    groups = model.host_groups
    lines = [f"Pool of {plural(len(hosts), 'host')} of {plural(len(groups), 'type')}:"]
    return lines + [f"  {group.description}" for group in groups]
