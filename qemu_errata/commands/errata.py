"""The ``errata`` command: what a pool's guests, or a host's CPUs, work around (shell)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.commands.arguments import read_document_argument
from qemu_errata.core.catalogue import parse_kernel_version
from qemu_errata.core.errata import (
    ErrataTable,
    kernel_view,
    load_errata_table,
    pool_errata,
)
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import ExitStatus, InputError
from qemu_errata.reports.errata import ModelErrata, ProfileErrata, errata_json, errata_text


def register(commands: Subcommands) -> None:
    """Add ``errata``."""
    sub = add_command(
        commands,
        "errata",
    )
    sub.add_argument(
        "inputs",
        nargs="+",
        metavar="MODEL_OR_PROFILE",
        help="pool model, host profile or embedded profile name",
    )
    sub.add_argument("--json", action="store_true", help="print the answer as JSON")
    sub.add_argument(
        "--guest-kernel",
        metavar="VERSION",
        help="only workarounds this guest Linux carries (e.g. 6.12; older than 6.15: no list)",
    )
    sub.set_defaults(run=_cmd_errata)


def _cmd_errata(args: argparse.Namespace) -> int:
    kernel = _guest_kernel(args.guest_kernel)
    documents = [(name, read_document_argument(Path(name))) for name in args.inputs]
    table = load_errata_table()
    results = [_analyse(table, name, document, kernel) for name, document in documents]
    if args.json:
        print(json.dumps(errata_json(table, args.guest_kernel, results), indent=2))
    else:
        print("\n\n".join(errata_text(result, kernel) for result in results))
    return ExitStatus.OK


def _guest_kernel(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    version = parse_kernel_version(text)
    if version is None:
        raise InputError(f"--guest-kernel {text!r}: not a kernel version such as 6.12")
    return version


def _analyse(
    table: ErrataTable, name: str, document: PoolModel | HostProfile, kernel: tuple[int, int] | None
) -> ModelErrata | ProfileErrata:
    if isinstance(document, PoolModel):
        targets = list(document.target_implementations)
        return ModelErrata(
            name, document, pool_errata(table, targets, _registers(document), kernel)
        )
    views = [
        (i.target, kernel_view(table, [i.target], _registers(document), at_el2=True))
        for i in document.implementations
    ]
    return ProfileErrata(name, document, views)


def _registers(document: PoolModel | HostProfile) -> dict[str, int]:
    """The ID registers and the firmware pseudo-registers (the hypervisor's SMCCC answers)."""
    return {**document.id_registers, **document.firmware_registers}
