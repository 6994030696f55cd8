"""The ``verify`` report: whether a running guest presents the pool model, in JSON and text.

``verify --json`` prints verify_json; qemu-check/1 carries the same object.
"""

from __future__ import annotations

from typing import Any

from qemu_errata.vmm.verify import VerifyReport


def verify_json(report: VerifyReport) -> dict[str, Any]:
    """verify's comparison: every difference, everything not checked, notes."""
    return {
        "ok": report.ok,
        "differences": list(report.differences),
        "not_checked": list(report.not_checked),
        "compared_fields": report.compared_fields,
        "notes": list(report.notes),
    }


def describe_verify(report: VerifyReport) -> str:
    if report.ok:
        lines = [
            f"The guest presents the pool model ({report.compared_fields} register fields, "
            f"the MIDR of each vCPU and the target list compared)."
        ]
    elif report.differences:
        lines = ["The guest differs from the pool model:"]
    else:
        lines = [
            f"The guest could not be compared with the pool model in full: "
            f"{report.compared_fields} register fields compared equal, the rest not checked."
        ]
    lines.extend(f"  {difference}" for difference in report.differences)
    if report.not_checked:
        lines.append("Not checked:")
        lines.extend(f"  {item}" for item in report.not_checked)
    lines.extend(f"Note: {note}" for note in report.notes)
    return "\n".join(lines)
