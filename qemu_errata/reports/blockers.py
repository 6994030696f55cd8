"""A blocker (why a pool cannot form, or a host cannot present a model) in JSON.

Shared by the refusals of ``baseline`` and ``plan`` and the verdict of ``check``
(the "blocker" definition of data/schemas/common.schema.json).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

    from qemu_errata.errors import Blocking


def blocker_json(blocker: Blocking) -> dict[str, Any]:
    """One blocker: register, field, reason key, each host's value, the message."""
    return {
        "register": blocker.register or None,
        "field": blocker.field,
        "reason": str(blocker.reason),
        "values": dict(blocker.values),
        "message": blocker.message,
    }
