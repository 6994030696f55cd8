"""The ``qemu-check`` report (qemu-check/1): what a real QEMU under KVM offers and runs.

Standard library only, like the command: it runs on the nested host.
"""

from __future__ import annotations

from typing import Any

from qemu_errata.core.words import plural
from qemu_errata.reports.verify import not_set_words, verify_json, verify_lines, wrapped
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
    """The report (its JSON form) as text: one paragraph per step, every item named, then
    one verdict line that agrees with the exit status."""
    return "\n".join([*_steps(data), _verdict(data)])


def _steps(data: dict[str, Any]) -> list[str]:
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
        lines.append("  lacks:")
        lines.extend(wrapped(sysreg["lacking"], "    "))
    has = "has" if data["impl_cpu"] else "lacks"
    lines.append(f"Target implementation list: the virt machine {has} impl-cpu.")
    if data["model_needs"]:
        lines.append("The model's configuration needs what this QEMU lacks (no VM started):")
        lines.extend(f"  {item}" for item in data["model_needs"])
        return lines
    vm = data["vm"]
    lines.append(f"VM: {' '.join(vm['arguments'])}")
    if not vm["ran"]:
        lines.append(f"  did not run: {vm['problem']}")
        return lines
    lines.append(f"  runs; its console: {vm['console']}")
    if vm["console_midr"] is not None:
        lines.append(f"  its kernel names MIDR {vm['console_midr']}")
    verify = data["verify"]
    lines.append(
        f"verify: {plural(verify['compared_fields'], 'register field')} compared, "
        f"{plural(len(verify['differences']), 'difference')}."
    )
    lines.extend(verify_lines(verify, "  "))
    return lines


def _verdict(data: dict[str, Any]) -> str:
    """Why the check passed or failed, in one line."""
    if data["model_needs"]:
        return (
            f"qemu-check failed: this QEMU lacks {plural(len(data['model_needs']), 'thing')} "
            "the model needs (above), so no VM was started."
        )
    if not data["vm"]["ran"]:
        return f"qemu-check failed: the VM did not run ({data['vm']['problem']})."
    verify = data["verify"]
    compared = verify["compared_fields"]
    if data["ok"]:
        return (
            f"qemu-check passed: the VM runs and presents the model "
            f"({plural(compared, 'register field')} compared, all equal{not_set_words(verify)})."
        )
    if verify["differences"]:
        return (
            f"qemu-check failed: the VM runs and differs from the model: "
            f"{plural(len(verify['differences']), 'difference')} (above)."
        )
    unchecked = sum(len(group["names"]) for group in verify["not_checked"])
    return (
        f"qemu-check failed: the VM runs, but {plural(unchecked, 'item')} could not be checked "
        f"(above) and {plural(compared, 'register field')} compared, so nothing vouches that "
        "it presents the model."
    )
