"""The ``can-migrate`` command: the hook's migration decision, asked before migrating."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.commands.arguments import add_vmm_option, read_profile_argument
from qemu_errata.core.migration import arrival
from qemu_errata.errors import ExitStatus
from qemu_errata.files import read_model
from qemu_errata.reports.can_migrate import arrival_json, arrival_lines
from qemu_errata.vmm.discovery import deciding_vmm


def register(commands: Subcommands) -> None:
    """Add ``can-migrate``."""
    sub = add_command(
        commands,
        "can-migrate",
        description="The decision the libvirt hook takes on the destination host: can a VM of "
        "MODEL, started on the --from host (default: one presenting the model's values), run "
        "on the --to host. Exit 0 yes, 1 no with every reason.",
    )
    sub.add_argument("model", type=Path, metavar="MODEL", help="the VM's pool model")
    sub.add_argument("--to", required=True, type=Path, metavar="PROFILE", help="the destination")
    sub.add_argument("--from", dest="start", type=Path, metavar="PROFILE", help="the start host")
    add_vmm_option(sub)
    sub.add_argument("--json", action="store_true", help="print the decision as JSON")
    sub.set_defaults(run=_cmd_can_migrate)


def _cmd_can_migrate(args: argparse.Namespace) -> int:
    model = read_model(args.model)
    destination = read_profile_argument(args.to)
    start = None if args.start is None else read_profile_argument(args.start)
    vmm = deciding_vmm(args.vmm)
    decision = arrival(model, destination, vmm, start)
    if args.json:
        print(json.dumps(arrival_json(decision), indent=2))
    else:
        print("\n".join(arrival_lines(decision)))
    return ExitStatus.OK if decision.allowed else ExitStatus.NO
