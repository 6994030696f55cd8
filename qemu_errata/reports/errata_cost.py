"""What each target implementation alone makes every guest work around, in JSON and text.

Part of the ``baseline`` and ``check`` reports ("errata_cost").
"""

from __future__ import annotations

from qemu_errata.core.errata import Workaround
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import Midr

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

Cost = list[tuple[TargetImplementation, tuple[Workaround, ...]]]


def cost_json(cost: Cost) -> list[dict[str, Any]]:
    return [
        {
            **target.to_json(),
            "name": Midr(target.midr).describe(),
            "adds": [i for ids in workarounds for i in ids],
            "workarounds": [list(ids) for ids in workarounds],
        }
        for target, workarounds in cost
    ]


def cost_lines(cost: Cost) -> list[str]:
    return [
        f"  {Midr(target.midr).describe()}, {target.revidr_aidr()}: adds {len(workarounds)}"
        for target, workarounds in cost
    ]
