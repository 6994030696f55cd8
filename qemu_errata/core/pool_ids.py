"""Pool ids that survive re-planning: derived from what a pool presents, kept across runs.

Schedulers label hosts with pool ids, so an id must not move to another CPU family
because a host was added or its file sorts first. A pool's id is a digest of the
CPU model it presents (register values, target list, timer frequency): hosts of
types already in it, and pools formed beside it, never change it. A new type that
changes what the pool presents makes it another pool; ``--previous`` keeps the old
id for the pool that took over most of its hosts, and lists every host that moves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from qemu_errata.core.pool import REGISTER_GROUPS, PoolModel
from qemu_errata.core.record import record

ID_LENGTH = 8


def pool_id(model: PoolModel) -> str:
    """The id of the pool presenting ``model``: 8 hex digits of a digest of its values."""
    defining = {
        "targets": model.target_implementations.to_json(),
        "timer_frequency_hz": model.timer_frequency_hz,
        **{group: sorted(getattr(model, group).items()) for group in REGISTER_GROUPS},
    }
    digest = hashlib.sha256(json.dumps(defining, sort_keys=True).encode())
    return digest.hexdigest()[:ID_LENGTH]


@record
class PreviousPlan:
    """The pools of an earlier plan: each id and its hosts."""

    pools: Mapping[str, frozenset[str]]

    def pool_of(self, host: str) -> str | None:
        return next((pid for pid, hosts in self.pools.items() if host in hosts), None)


@record
class Move:
    """A host whose pool differs from the previous plan's (None: not in that plan)."""

    host: str
    before: str | None
    after: str | None

    def describe(self) -> str:
        before = "new" if self.before is None else f"pool {self.before}"
        after = "gone" if self.after is None else f"pool {self.after}"
        return f"{self.host}: {before} -> {after}"


def previous_from_json(data: Mapping[str, Any], origin: str) -> PreviousPlan:
    """The pools of a ``plan --json`` document (InputError-free: the caller checked format)."""
    pools = {}
    for index, pool in enumerate(data.get("pools", [])):
        hosts = pool.get("hosts") if isinstance(pool, dict) else None
        pid = pool.get("id") if isinstance(pool, dict) else None
        if not (isinstance(pid, str) and isinstance(hosts, list)):
            raise ValueError(f"{origin}: pools[{index}] needs an id and a list of hosts")
        pools[pid] = frozenset(str(h) for h in hosts)
    return PreviousPlan(pools)


def kept_ids(pools: Sequence[tuple[str, frozenset[str]]], previous: PreviousPlan) -> dict[str, str]:
    """New id -> the id to use: a previous pool's, for the pool holding most of its hosts.

    Pools are matched largest overlap first; an id already in use elsewhere stays its own.
    """
    overlaps = sorted(
        (
            (len(hosts & old_hosts), new_id, old_id)
            for new_id, hosts in pools
            for old_id, old_hosts in previous.pools.items()
            if hosts & old_hosts
        ),
        key=lambda item: (-item[0], item[1], item[2]),
    )
    chosen: dict[str, str] = {}
    taken: set[str] = set()
    own = {new_id for new_id, _ in pools}
    for _, new_id, old_id in overlaps:
        if new_id in chosen or old_id in taken or (old_id in own and old_id != new_id):
            continue
        chosen[new_id] = old_id
        taken.add(old_id)
    return {new_id: chosen.get(new_id, new_id) for new_id, _ in pools}


def moves(pools: Mapping[str, frozenset[str]], previous: PreviousPlan) -> list[Move]:
    """Every host whose pool changed since ``previous`` (in host name order)."""
    now = {host: pid for pid, hosts in pools.items() for host in hosts}
    before = {host: pid for pid, hosts in previous.pools.items() for host in hosts}
    return [
        Move(host, before.get(host), now.get(host))
        for host in sorted(now.keys() | before.keys())
        if before.get(host) != now.get(host)
    ]
