"""The ``guest-view`` report (guest-view/1): what a booted guest said, in JSON and text.

Standard library only, like the command: it runs on the nested host.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

from qemu_errata.core.board import Board
from qemu_errata.core.guest_judgement import Judgement
from qemu_errata.core.guest_log import GuestErratum, GuestLog, read_vulnerabilities
from qemu_errata.core.midr import MIDR_REGISTER, Midr
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.vulnerabilities import VULNERABILITIES_DIRECTORY
from qemu_errata.core.words import plural
from qemu_errata.probe.guest_boot import (
    IDENTITY,
    GuestBoot,
)
from qemu_errata.reports.errata import board_json

GUEST_VIEW_FORMAT = "qemu-errata/guest-view/1"


@dataclass(frozen=True)
class GuestView:
    """What guest-view saw: the model (by name), the boot, the guest's log, its board and
    how it compares with the prediction."""

    name: str
    model: PoolModel
    boot: GuestBoot
    log: GuestLog
    board: Board
    judgement: Judgement


def guest_view_json(seen: GuestView) -> dict[str, Any]:
    name, model, boot, log, judged = seen.name, seen.model, seen.boot, seen.log, seen.judgement
    return {
        "format": GUEST_VIEW_FORMAT,
        "model": name,
        "host_kernel": platform.release(),
        "boot_seconds": round(boot.seconds, 1),
        "errata": [
            {"description": erratum.description, "ids": list(erratum.ids)} for erratum in log.errata
        ],
        "features": list(log.detected),
        "target_implementations": {
            "offered": boot.list_offered,
            "version_calls": boot.version_calls,
            "received": [
                {"index": answer.index, **(answer.entry.to_json() if answer.entry else {})}
                for answer in boot.answers
            ],
            "guest_log": list(log.target_lines),
        },
        "differing_registers": differing(model, boot),
        "id_registers": {
            name: {
                "guest": read.describe(),
                "model": None if (value := model.id_registers.get(name)) is None else f"{value:#x}",
            }
            for name, read in boot.reads.items()
        },
        "identity_pinned": boot.identity_pinned,
        "board": board_json(seen.board),
        "vulnerabilities": read_vulnerabilities(boot.console_text.splitlines()),
        "judgement": {
            "guest_kernel": judged.release,
            "agrees": judged.agrees,
            "differences": [
                {"kind": d.kind, "name": d.name, "guest": d.guest, "predicted": d.predicted}
                for d in judged.differences
            ],
            "detected_compared": judged.detected_compared,
            "files_compared": judged.files_compared,
            "files_open": list(judged.files_open),
            "summary": judged.summary(),
        },
        "log": boot.console_text,
    }


def differing(model: PoolModel, boot: GuestBoot) -> list[str]:
    """The model's registers the guest read otherwise (an UNDEFINED MRS reads as zero, as a
    register KVM does not offer: kvm-validate's rule)."""
    return [
        name
        for name, read in boot.reads.items()
        if name in model.id_registers and (read.value or 0) != model.id_registers[name]
    ]


def describe(seen: GuestView) -> str:
    name, model, boot, log = seen.name, seen.model, seen.boot, seen.log
    differ = differing(model, boot)
    lines = [
        f"{name}: a guest on this host's KVM (Linux {platform.release()}), on"
        f" {seen.board.describe()}, ran to its userspace's end in {boot.seconds:.1f} s.",
        f"ID registers its code read with MRS: {len(boot.reads)}; "
        + (
            f"differing from the model: {', '.join(differ)}"
            if differ
            else "all as the model has them"
        ),
    ]
    for register in IDENTITY:
        read = boot.reads.get(register)
        if read is not None and read.value is not None:
            shown = Midr(read.value).describe() if register == MIDR_REGISTER else f"{read.value:#x}"
            lines.append(f"  {register}: {shown}")
    lines.extend(_target_lines(model, boot, log))
    lines.append(f"Errata workarounds it enabled ({len(log.errata)}):")
    lines.extend(f"  {_named(erratum)}" for erratum in log.errata)
    named = {erratum.description for erratum in log.errata}
    others = [d for d in log.detected if d not in named]
    lines.append(f"Other CPU features it detected ({len(others)}): {', '.join(others)}")
    printed = read_vulnerabilities(boot.console_text.splitlines())
    lines.append(f"What it printed in {VULNERABILITIES_DIRECTORY} ({len(printed)} files):")
    lines.extend(f"  {file}: {words}" for file, words in printed.items())
    differences = seen.judgement.differences
    if differences:
        lines.append(f"Differences from the errata prediction ({len(differences)}):")
        lines.extend(f"  {d.describe()}" for d in differences)
    lines.append(seen.judgement.summary())
    return "\n".join(lines)


def _named(erratum: GuestErratum) -> str:
    """The kernel's description, and the table's ids where they say more."""
    if erratum.ids == (erratum.description,):
        return erratum.description
    ids = ", ".join(erratum.ids) or "not in the errata table"
    return f"{erratum.description} ({ids})"


def _target_lines(model: PoolModel, boot: GuestBoot, log: GuestLog) -> list[str]:
    if not boot.list_offered:
        lines = ["Target implementation list: not offered (this kernel has no BMAP_2)"]
    else:
        lines = [
            f"Target implementation list: the guest asked for {len(boot.answers)} of "
            f"{plural(len(model.target_implementations), 'entry', 'entries')}"
        ]
    for answer in boot.answers:
        entry = answer.entry
        shown = (
            "INVALID_PARAMETER"
            if entry is None
            else f"{Midr(entry.midr).describe()}, {entry.revidr_aidr()}"
        )
        lines.append(f"  {answer.index}: {shown}")
    return lines + [f"  guest: {line}" for line in log.target_lines]
