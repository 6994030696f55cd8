"""The ``check`` report (check/1): whether a host can present a model, in JSON and text."""

from __future__ import annotations

from qemu_errata.core.pool import CheckResult
from qemu_errata.core.words import plural
from qemu_errata.reports.blockers import blocker_json
from qemu_errata.reports.errata_cost import Cost, cost_json, cost_lines

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

CHECK_FORMAT = "qemu-errata/check/1"


def check_json(result: CheckResult, cost: Cost) -> dict[str, Any]:
    return {
        "format": CHECK_FORMAT,
        "host": result.host,
        "ok": result.ok,
        "problems": [blocker_json(p) for p in result.problems],
        "notes": list(result.notes),
        "errata_cost": cost_json(cost),
    }


def describe_check(result: CheckResult, cost: Cost) -> str:
    """Every problem, the errata cost, the notes, then the verdict (agreeing with the exit
    status) last."""
    lines = []
    if result.problems:
        lines.append(f"Why host {result.host} cannot present the pool model:")
        lines.extend(f"  {problem.message}" for problem in result.problems)
    lines.append("Errata workarounds each of its CPU types adds to every guest of the pool:")
    lines.extend(cost_lines(cost))
    lines.extend(f"Note: {note}" for note in result.notes)
    if result.ok:
        lines.append(f"Host {result.host} can present the pool model.")
    else:
        problems = plural(len(result.problems), "problem")
        lines.append(f"Host {result.host} cannot present the pool model ({problems} above).")
    return "\n".join(lines)
