"""The ``errata`` command: what a pool's guests, or a host's CPUs, work around (shell)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.commands.arguments import read_document_argument
from qemu_errata.core.board import Board, guest_board
from qemu_errata.core.errata import (
    ErrataTable,
    kernel_view,
    load_errata_table,
    pool_errata,
    release_of,
)
from qemu_errata.core.errata.hazards import model_hazards, pool_hazards
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import ExitStatus
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
        help="the Debian guest kernel release to answer for (e.g. 6.12.117, 7.2.6, 7.3.4;"
        " default: the newest known; 6.12 guests ignore the target list)",
    )
    sub.add_argument(
        "--guest-cmdline",
        metavar="WORDS",
        help="the guest's kernel command line where it changes the mitigations"
        ' (nokaslr, kpti=0|1, mitigations=off, nospectre_v2, nospectre_bhb; e.g. "nokaslr")',
    )
    sub.set_defaults(run=_cmd_errata)


def _cmd_errata(args: argparse.Namespace) -> int:
    # A Debian ``uname -r`` names its release too (7.2.13+deb14-arm64).
    table = load_errata_table(args.guest_kernel and release_of(args.guest_kernel))
    board = guest_board(args.guest_cmdline)
    documents = [(name, read_document_argument(Path(name))) for name in args.inputs]
    results = [_analyse(table, name, document, board) for name, document in documents]
    default = args.guest_kernel is None
    if args.json:
        print(json.dumps(errata_json(table, default, results, board), indent=2))
    else:
        print(errata_text(table, default, results, board))
    return ExitStatus.OK


def _analyse(
    table: ErrataTable, name: str, document: PoolModel | HostProfile, board: Board
) -> ModelErrata | ProfileErrata:
    if isinstance(document, PoolModel):
        targets = list(document.target_implementations)
        registers = _registers(document)
        return ModelErrata(
            name,
            document,
            pool_errata(table, targets, registers, board),
            model_hazards(document, board=board),
            pool_hazards(targets, registers, [table], board=board),
        )
    views = [
        (i.target, kernel_view(table, [i.target], _registers(document), at_el2=True))
        for i in document.implementations
    ]
    return ProfileErrata(name, document, views)


def _registers(document: PoolModel | HostProfile) -> dict[str, int]:
    """The ID registers and the firmware pseudo-registers (the hypervisor's SMCCC answers)."""
    return {**document.id_registers, **document.firmware_registers}
