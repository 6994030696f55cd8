"""The ``verify`` report (verify/1): whether a running guest presents the pool model.

``verify --json`` prints verify_json; qemu-check/1 carries the same object. The
text is made from the JSON form, so both commands say the same, and ends with
one verdict line that agrees with the exit status.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any

from qemu_errata.core.catalogue import Catalogue, load_catalogue
from qemu_errata.core.words import plural
from qemu_errata.reports.blockers import blocker_json
from qemu_errata.vmm.verify import Unchecked, VerifyReport

VERIFY_FORMAT = "qemu-errata/verify/1"
WIDTH = 100  # columns of a wrapped list


def verify_json(report: VerifyReport) -> dict[str, Any]:
    """verify's comparison: every difference (as check's problems), what was not checked, notes."""
    return {
        "format": VERIFY_FORMAT,
        "ok": report.ok,
        "differences": [blocker_json(difference) for difference in report.differences],
        "not_checked": _groups_json(report.not_checked),
        "not_set_by_vmm": _groups_json(report.not_set),
        "compared_fields": report.compared_fields,
        "notes": list(report.notes),
    }


def _groups_json(groups: Iterable[Unchecked]) -> list[dict[str, Any]]:
    return [{"reason": group.reason, "names": list(group.names)} for group in groups]


def describe_verify(report: VerifyReport) -> str:
    data = verify_json(report)
    return "\n".join([*verify_lines(data), verify_verdict(data)])


def verify_lines(data: dict[str, Any], indent: str = "") -> list[str]:
    """The differences, what was not checked (grouped by register, wrapped), the notes."""
    lines = []
    if data["differences"]:
        lines.append(f"{indent}Differences from the pool model:")
        lines.extend(f"{indent}  {item['message']}" for item in data["differences"])
    for key, heading in (
        ("not_checked", "Not checked"),
        ("not_set_by_vmm", "Not the VMM's to set (not held against the guest)"),
    ):
        if data[key]:
            lines.append(f"{indent}{heading}:")
        for group in data[key]:
            lines.append(f"{indent}  {group['reason']}:")
            lines.extend(wrapped(grouped(group["names"]), f"{indent}    "))
    lines.extend(f"{indent}Note: {note}" for note in data["notes"])
    return lines


def verify_verdict(data: dict[str, Any]) -> str:
    """One line: what was compared, and whether verify vouches for the guest (exit 0) or not."""
    compared = f"{plural(data['compared_fields'], 'register field')} compared"
    unchecked = plural(sum(len(group["names"]) for group in data["not_checked"]), "item")
    if data["ok"]:
        return (
            f"The guest presents the pool model: {compared}, with the MIDR of each vCPU and "
            f"the target list, all equal{not_set_words(data)}."
        )
    if data["differences"]:
        also = f", {unchecked} not checked" if data["not_checked"] else ""
        return (
            f"The guest differs from the pool model: "
            f"{plural(len(data['differences']), 'difference')} (above); {compared}{also}."
        )
    return f"Not vouched for: {compared} equal, but {unchecked} could not be checked (above)."


def not_set_words(data: dict[str, Any]) -> str:
    """What the verdict adds for the registers no VMM sets ("": none)."""
    count = sum(len(group["names"]) for group in data["not_set_by_vmm"])
    return f"; {plural(count, 'item')} no VMM sets are listed above" if count else ""


def grouped(names: Iterable[str]) -> list[str]:
    """Qualified field names grouped by register: ``REG`` when every field of a catalogued
    register is there, else ``REG: F1, F2``; other names as they are."""
    catalogue = load_catalogue()
    by_register: dict[str, list[str]] = {}
    for name in names:
        register, dot, field = name.partition(".")
        is_field = bool(dot) and " " not in name
        by_register.setdefault(register if is_field else name, [])
        if is_field:
            by_register[register].append(field)
    return [
        f"{key}: {', '.join(fields)}" if fields and not _whole(key, fields, catalogue) else key
        for key, fields in by_register.items()
    ]


def _whole(register: str, fields: list[str], catalogue: Catalogue) -> bool:
    """Whether ``fields`` are every field of ``register`` (a register we catalogue)."""
    known = catalogue.get(register)
    return known is not None and {f.name for f in known.fields} <= set(fields)


def wrapped(items: list[str], indent: str) -> list[str]:
    """``items``, separated by "; ", wrapped at WIDTH columns under ``indent``."""
    return textwrap.wrap(
        "; ".join(items),
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
        break_long_words=False,
    )
