"""The ``qemu-check`` report (qemu-check/1): what a real QEMU under KVM offers and runs.

Standard library only, like the command: it runs on the nested host.
"""

from __future__ import annotations

from typing import Any

from qemu_errata.reports.verify import verify_json
from qemu_errata.vmm.qemu_check import CheckReport, console_midr

QEMU_CHECK_FORMAT = "qemu-errata/qemu-check/1"


def qemu_check_json(report: CheckReport) -> dict[str, Any]:
    """Each step's findings; ``verify`` as verify_json has it."""
    midr = None if report.vm_console is None else console_midr(report.vm_console)
    return {
        "format": QEMU_CHECK_FORMAT,
        "ok": report.ok,
        "qemu": report.qemu,
        "kvm": report.kvm,
        "sysreg": {"offered": list(report.sysreg.offered), "lacking": list(report.sysreg.lacking)},
        "impl_cpu": report.impl_cpu,
        "model_needs": list(report.needs),
        "vm": {
            "arguments": list(report.arguments),
            "ran": report.vm_console is not None,
            "console": report.vm_console,
            "console_midr": None if midr is None else f"{midr:#x}",
            "problem": report.vm_problem,
        },
        "verify": None if report.verify is None else verify_json(report.verify),
        "seconds": report.seconds,
    }


def describe(data: dict[str, Any]) -> str:
    """The report (its JSON form) as text: one paragraph per step, every item named."""
    sysreg = data["sysreg"]
    lines = [f"QEMU {data['qemu']}, KVM {'enabled' if data['kvm'] else 'NOT enabled'}."]
    total = len(sysreg["offered"]) + len(sysreg["lacking"])
    lines.append(
        f"SYSREG properties: offers {len(sysreg['offered'])} of the {total} ID register "
        f"fields a QEMU series can set."
    )
    if sysreg["lacking"] and not sysreg["offered"]:
        lines.append(f"  lacks all {total} (--json lists them by name)")
    elif sysreg["lacking"]:
        lines.append(f"  lacks: {', '.join(sysreg['lacking'])}")
    has = "has" if data["impl_cpu"] else "lacks"
    lines.append(f"Target implementation list: the virt machine {has} impl-cpu.")
    if data["model_needs"]:
        lines.append("The model's configuration needs what this QEMU lacks (no VM started):")
        lines.extend(f"  {item}" for item in data["model_needs"])
        return "\n".join(lines)
    vm = data["vm"]
    lines.append(f"VM: {' '.join(vm['arguments'])}")
    if not vm["ran"]:
        lines.append(f"  did not run: {vm['problem']}")
        return "\n".join(lines)
    lines.append(f"  runs; its console: {vm['console']}")
    if vm["console_midr"] is not None:
        lines.append(f"  its kernel names MIDR {vm['console_midr']}")
    verify = data["verify"]
    lines.append(
        f"verify: {verify['compared_fields']} register fields compared, "
        f"{len(verify['differences'])} differences."
    )
    lines.extend(f"  differs: {item}" for item in verify["differences"])
    lines.extend(f"  not checked: {item}" for item in verify["not_checked"])
    lines.extend(f"  note: {item}" for item in verify["notes"])
    return "\n".join(lines)
