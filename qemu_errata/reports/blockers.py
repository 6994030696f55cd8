"""A blocker (why a pool cannot form, or a host cannot present a model) in JSON.

Shared by the refusals of ``baseline`` and ``plan`` and the verdict of ``check``
(the "blocker" definition of data/schemas/common.schema.json).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from qemu_errata.errors import Blocking


def blocker_json(blocker: Blocking, first_hosts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One blocker: register, field, reason key, each host's value, the message. Values are
    keyed by host names: a host type's label (``h1 (+3 alike)``) by its first host's,
    from ``first_hosts`` (core.hosttypes.first_hosts)."""
    names = first_hosts or {}
    return {
        "register": blocker.register or None,
        "field": blocker.field,
        "reason": str(blocker.reason),
        "values": {names.get(k, k): v for k, v in blocker.values.items()},
        "message": blocker.message,
    }
