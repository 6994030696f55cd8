"""The ``plan`` command: which host types can share a pool, proposed pools, scheduler hints."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.commands.arguments import (
    accepted_names,
    add_accept_option,
    add_vmm_option,
    read_profile_argument,
)
from qemu_errata.commands.pool import say_unknown_masks
from qemu_errata.core.catalogue import parse_kernel_version
from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.plan import Plan, plan, pools_served
from qemu_errata.core.pool_ids import PreviousPlan, previous_from_json
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.upgrade import upgraded
from qemu_errata.errors import ExitStatus, IncompatiblePoolError, InputError, NoPartitionError
from qemu_errata.files import read_json, write_atomically
from qemu_errata.reports.plan import (
    PLAN_FORMAT,
    kubernetes_labels,
    nova_provider_config,
    plan_json,
    plan_refusal_json,
)
from qemu_errata.reports.plan_picture import plan_svg
from qemu_errata.reports.plan_text import plan_detail, plan_summary
from qemu_errata.vmm.discovery import deciding_vmm

HOST_LABELS = ("kubernetes", "nova")


def register(commands: Subcommands) -> None:
    """Add ``plan``."""
    sub = add_command(commands, "plan")
    sub.add_argument(
        "profiles",
        nargs="+",
        type=Path,
        metavar="PROFILE",
        help="every host's profile (a file, or an embedded profile's name: `qemu-errata profiles`)",
    )
    sub.add_argument(
        "--pools", type=int, metavar="N", help="at most N pools (default: the fewest possible)"
    )
    output = sub.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the plan as JSON")
    output.add_argument(
        "--host-labels",
        choices=HOST_LABELS,
        help="print, per host, the pools it can serve: Kubernetes node labels (and the removal "
        "of the others) or a Nova provider config file",
    )
    sub.add_argument(
        "--detail",
        action="store_true",
        help="print every type, the matrix of pairs (what each loses, or why it cannot share a "
        "pool) and every reason, instead of the summary (with --json: add the matrix)",
    )
    sub.add_argument("--picture", type=Path, metavar="FILE.svg", help="draw the matrix here")
    sub.add_argument(
        "--previous",
        type=Path,
        metavar="PLAN.json",
        help="an earlier `plan --json`: keep its pool ids and list every host that changes pool",
    )
    sub.add_argument(
        "--kernel-upgrade",
        metavar="VERSION",
        help="plan the fleet as if every older host ran Linux VERSION (e.g. 7.3), and list the "
        "hosts that would leave or join a pool",
    )
    add_vmm_option(sub)
    add_accept_option(sub)
    sub.set_defaults(run=_cmd_plan)


def _cmd_plan(args: argparse.Namespace) -> int:
    _check_picture_name(args.picture)
    profiles = [read_profile_argument(path) for path in args.profiles]
    vmm = deciding_vmm(args.vmm)
    previous = None if args.previous is None else _read_previous(args.previous)
    accepted = accepted_names(args)
    if not (args.json or args.host_labels):
        say_unknown_masks(profiles)
    try:
        limit = _pool_limit(args.pools)
        if args.kernel_upgrade is not None:
            version = _version(args.kernel_upgrade)
            previous = previous or _as_previous(plan(profiles, limit, vmm=vmm, accepted=accepted))
            profiles = _upgraded(profiles, version)
        proposal = plan(profiles, limit, vmm=vmm, previous=previous, accepted=accepted)
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
    served = None if args.host_labels is None else pools_served(proposal, profiles, vmm=vmm)
    if served is not None and args.host_labels == "kubernetes":
        known = () if previous is None else tuple(previous.pools)
        print(kubernetes_labels(served, known), end="")
    elif served is not None:
        print(nova_provider_config(served), end="")
    elif args.json:
        print(json.dumps(plan_json(proposal, detail=args.detail), indent=2))
    else:
        print("\n".join((plan_detail if args.detail else plan_summary)(proposal)))
        if args.kernel_upgrade is not None:
            print(f"Planned as if every host older than Linux {args.kernel_upgrade} ran it.")
        if args.picture:
            print(f"Picture written to {args.picture}")
    return ExitStatus.OK


def _check_picture_name(picture: Path | None) -> None:
    """The picture is SVG: a name that says otherwise (p.png) is refused, not filled with SVG."""
    if picture is not None and picture.suffix.lower() != ".svg":
        raise InputError(
            f"--picture {picture}: the picture is SVG, name it FILE.svg "
            f"(`rsvg-convert -o {picture.with_suffix('.png').name} FILE.svg` makes a PNG of it)"
        )


def _pool_limit(limit: int | None) -> int | None:
    """``--pools N`` if it asks for any pool at all; InputError otherwise."""
    if limit is not None and limit < 1:
        raise InputError(f"--pools {limit}: needs at least 1 pool")
    return limit


def _read_previous(path: Path) -> PreviousPlan:
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise InputError(f"--previous {path}: not a `plan --json` document ({PLAN_FORMAT})")
    try:
        return previous_from_json(data, str(path))
    except ValueError as error:
        raise InputError(f"--previous {error}") from None


def _as_previous(proposal: Plan) -> PreviousPlan:
    return PreviousPlan({pool.id: frozenset(pool.hosts) for pool in proposal.pools})


def _version(text: str) -> tuple[int, int]:
    version = parse_kernel_version(text)
    if version is None:
        raise InputError(f"--kernel-upgrade {text}: not a kernel version such as 7.3")
    return version


def _upgraded(profiles: Sequence[HostProfile], version: tuple[int, int]) -> list[HostProfile]:
    """Every profile as on Linux ``version``; InputError names the hosts it cannot predict."""
    embedded = {
        name: load_embedded_profile(name)
        for name in embedded_profile_names()
        if name.startswith("kvm-")
    }
    result = []
    unknown = []
    for profile in profiles:
        after = upgraded(profile, version, embedded)
        if after is None:
            unknown.append(profile.host)
        else:
            result.append(after)
    if unknown:
        raise InputError(
            f"--kernel-upgrade {version[0]}.{version[1]}: no embedded profiles of the CPUs of "
            f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} on their kernel and "
            f"on Linux {version[0]}.{version[1]}, so their upgrade cannot be predicted"
        )
    return result
