"""The ``can-migrate`` report (can-migrate/1): the hook's decision on an arriving VM."""

from __future__ import annotations

from typing import Any

from qemu_errata.core.migration import RULES, Arrival
from qemu_errata.core.vmms import Vmm
from qemu_errata.reports.blockers import blocker_json

CAN_MIGRATE_FORMAT = "qemu-errata/can-migrate/1"


def arrival_json(decision: Arrival) -> dict[str, Any]:
    return {
        "format": CAN_MIGRATE_FORMAT,
        "allowed": decision.allowed,
        "destination": decision.destination,
        "vmm": vmm_json(decision.vmm),
        "carried_from": decision.carried_from,
        "problems": [blocker_json(p) for p in decision.problems],
        "notes": list(decision.notes),
        "rules": {
            reason.value: RULES[reason]
            for reason in sorted({p.reason for p in decision.problems} & set(RULES))
        },
    }


def vmm_json(vmm: Vmm) -> dict[str, Any]:
    """A VMM's capabilities (vmm.schema.json)."""
    return {
        "name": vmm.name,
        "title": vmm.title,
        "found_at": vmm.found_at,
        "qemu_version": vmm.qemu_version or None,
        "firmware_properties": dict(vmm.firmware_properties),
        "sysreg_series": vmm.sysreg_series or None,
        "sets_midr": vmm.sets_midr,
        "impl_cpu": vmm.impl_cpu,
        "writable_imp_id_regs": vmm.writable_imp_id_regs,
        "tolerates_missing_registers": vmm.tolerates_missing_registers,
    }


def arrival_lines(decision: Arrival) -> list[str]:
    """The VMM, what the VM carries, notes, every problem, and the verdict last."""
    lines = [f"Deciding with {decision.vmm.describe()}; the VM carries {decision.carried_from}."]
    lines.extend(f"Note: {note}" for note in decision.notes)
    lines.extend(f"  {problem.message}" for problem in decision.problems)
    verdict = "can" if decision.allowed else "cannot"
    lines.append(f"The VM {verdict} migrate to {decision.destination}.")
    return lines
