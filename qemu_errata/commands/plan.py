"""The ``plan`` command: which host types can share a pool, proposed pools, scheduler hints."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.commands.arguments import read_profile_argument
from qemu_errata.commands.pool import say_unknown_masks
from qemu_errata.core.plan import plan, pools_served
from qemu_errata.errors import ExitStatus, IncompatiblePoolError, InputError, NoPartitionError
from qemu_errata.files import write_atomically
from qemu_errata.reports.plan import (
    kubernetes_labels,
    nova_provider_config,
    plan_json,
    plan_lines,
    plan_refusal_json,
)
from qemu_errata.reports.plan_picture import plan_svg

HOST_LABELS = {"kubernetes": kubernetes_labels, "nova": nova_provider_config}


def register(commands: Subcommands) -> None:
    """Add ``plan``."""
    sub = add_command(commands, "plan")
    sub.add_argument("profiles", nargs="+", type=Path, metavar="PROFILE")
    sub.add_argument(
        "--pools", type=int, metavar="N", help="at most N pools (default: the fewest possible)"
    )
    output = sub.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the plan as JSON")
    output.add_argument(
        "--host-labels",
        choices=sorted(HOST_LABELS),
        help="print, per host, the pools it can serve: Kubernetes node labels or a Nova "
        "provider config file",
    )
    sub.add_argument("--picture", type=Path, metavar="FILE.svg", help="draw the matrix here")
    sub.set_defaults(run=_cmd_plan)


def _cmd_plan(args: argparse.Namespace) -> int:
    profiles = [read_profile_argument(path) for path in args.profiles]
    if not (args.json or args.host_labels):
        say_unknown_masks(profiles)
    try:
        proposal = plan(profiles, _pool_limit(args.pools))
    except (IncompatiblePoolError, NoPartitionError) as refused:
        if not args.json:
            raise
        print(json.dumps(plan_refusal_json(profiles, refused), indent=2))
        return ExitStatus.NO
    if args.picture:
        try:
            write_atomically(args.picture, plan_svg(proposal).encode("utf-8"))
        except OSError as error:
            raise InputError(f"{args.picture}: cannot write: {error.strerror}") from None
    if args.host_labels:
        print(HOST_LABELS[args.host_labels](pools_served(proposal, profiles)), end="")
    elif args.json:
        print(json.dumps(plan_json(proposal), indent=2))
    else:
        print("\n".join(plan_lines(proposal)))
        if args.picture:
            print(f"Picture written to {args.picture}")
    return ExitStatus.OK


def _pool_limit(limit: int | None) -> int | None:
    """``--pools N`` if it asks for any pool at all; InputError otherwise."""
    if limit is not None and limit < 1:
        raise InputError(f"--pools {limit}: needs at least 1 pool")
    return limit
