"""The ``baseline`` and ``check`` commands: pool models from host profiles."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qemu_errata.commands import Subcommands
from qemu_errata.commands.arguments import add_vmm_option, read_profile_argument
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.errata import Workaround, added_by, load_errata_table
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import (
    MAX_HOSTS_FOR_SUBSETS,
    CheckResult,
    PoolModel,
    largest_pools,
    pin_midr,
)
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.readable import plural
from qemu_errata.core.vmm_fit import baseline_with, check_with, pool_refusals
from qemu_errata.errors import ExitStatus, IncompatiblePoolError, InputError
from qemu_errata.files import read_model, write_json
from qemu_errata.vmm.discovery import deciding_vmm


def register(commands: Subcommands) -> None:
    """Add ``baseline`` and ``check``."""
    sub = commands.add_parser("baseline", help="compute the pool model of host profiles")
    sub.add_argument("profiles", nargs="+", type=Path, metavar="PROFILE")
    sub.add_argument("-o", "--output", type=Path, metavar="MODEL", help="write the model here")
    sub.add_argument("--json", action="store_true", help="print the model (or refusal) as JSON")
    sub.add_argument(
        "--pin-midr",
        nargs="?",
        const="first",
        metavar="MIDR",
        help="every guest sees this MIDR on every host (default: the first target's); "
        "needs KVM_CAP_ARM_WRITABLE_IMP_ID_REGS (Linux >= 6.15) on every host",
    )
    add_vmm_option(sub)
    sub.set_defaults(run=_cmd_baseline)

    sub = commands.add_parser("check", help="can this host present this pool model")
    sub.add_argument("model", type=Path, metavar="MODEL")
    sub.add_argument("profile", type=Path, metavar="PROFILE")
    sub.add_argument("--json", action="store_true", help="print the verdict as JSON")
    add_vmm_option(sub)
    sub.set_defaults(run=_cmd_check)


REFUSAL_FORMAT = "qemu-errata/baseline-refusal/1"
CHECK_FORMAT = "qemu-errata/check/1"


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _cmd_baseline(args: argparse.Namespace) -> int:
    profiles = [read_profile_argument(path) for path in args.profiles]
    pinned = None if args.pin_midr is None else _midr_argument(args.pin_midr)
    vmm = deciding_vmm(args.vmm)
    if not args.json:
        say_unknown_masks(profiles)
    try:
        model = baseline_with(profiles, vmm)
    except IncompatiblePoolError as refused:
        return _refused(args, profiles, refused, _what_to_do(profiles))
    if args.pin_midr is not None:
        try:
            model = pin_midr(model, profiles, pinned)
            refusals = pool_refusals(model, vmm, load_catalogue())
            if refusals:
                raise IncompatiblePoolError(refusals)
        except IncompatiblePoolError as refused:
            return _refused(args, profiles, refused, "Pin no MIDR, or leave those hosts out.")
    if args.output:
        write_json(args.output, model.to_json())
    cost = _errata_cost(model)
    if args.json:
        _print_json({**model.to_json(), "errata_cost": _cost_json(cost)})
    else:
        print(_describe_model(model, args.output, cost, vmm.describe()))
    return ExitStatus.OK


def _refused(
    args: argparse.Namespace,
    profiles: Sequence[HostProfile],
    refused: IncompatiblePoolError,
    what_to_do: str,
) -> int:
    if args.json:
        _print_json(
            {
                "format": REFUSAL_FORMAT,
                "hosts": [p.host for p in profiles],
                "blockers": [b.to_json() for b in refused.blockers],
            }
        )
    else:
        print(f"The pool of {', '.join(p.host for p in profiles)} is refused:")
        for blocker in refused.blockers:
            print(f"  {blocker.message}")
        print(what_to_do)
    return ExitStatus.NO


def _midr_argument(text: str) -> int | None:
    if text == "first":
        return None
    try:
        return int(text, 16)
    except ValueError:
        raise InputError(f"--pin-midr {text}: not a hexadecimal MIDR") from None


def say_unknown_masks(profiles: Sequence[HostProfile]) -> None:
    """One line up front for profiles without writable masks, not one per field."""
    unknown = [p.host for p in profiles if p.writable_masks is None and p.id_registers]
    if unknown:
        print(
            f"Note: {', '.join(unknown)} {'was' if len(unknown) == 1 else 'were'} probed without "
            "KVM: nothing counts as writable there; probe on the host with --backend kvm, or "
            "use the kvm-* embedded profiles (`qemu-errata profiles`)"
        )


def _what_to_do(profiles: Sequence[HostProfile]) -> str:
    """Which hosts do form a pool: the odd one out, or the largest subsets."""
    if len(profiles) > MAX_HOSTS_FOR_SUBSETS:
        return "To find the hosts that can share a pool, compute pools of fewer host types."
    pools = largest_pools(profiles)
    if not pools:
        return "No two of these hosts form a pool."
    if len(pools[0]) == len(profiles) - 1:
        odd = [next(p.host for p in profiles if p.host not in pool) for pool in pools]
        return f"The odd one out: {' or '.join(odd)} (the others form a pool without it)."
    subsets = "; ".join(" + ".join(pool) for pool in pools)
    return f"The largest pools these hosts form ({len(pools[0])} hosts each): {subsets}"


Cost = list[tuple[TargetImplementation, tuple[Workaround, ...]]]


def _errata_cost(model: PoolModel) -> Cost:
    """What each target implementation alone makes every (Linux >= 6.15) guest work around."""
    targets = list(model.target_implementations)
    registers = {**model.id_registers, **model.firmware_registers}
    return [(t, added_by(load_errata_table(), targets, t, registers)) for t in targets]


def _cost_json(cost: Cost) -> list[dict[str, Any]]:
    return [
        {
            **target.to_json(),
            "name": Midr(target.midr).describe(),
            "adds": [i for ids in workarounds for i in ids],
            "workarounds": [list(ids) for ids in workarounds],
        }
        for target, workarounds in cost
    ]


def _cost_lines(cost: Cost) -> list[str]:
    return [
        f"  {Midr(target.midr).describe()}, {target.revidr_aidr()}: adds {len(workarounds)}"
        for target, workarounds in cost
    ]


def _describe_model(model: PoolModel, output: Path | None, cost: Cost, vmm: str) -> str:
    lines = _hosts_lines(model)
    lines.append("Target implementations (guests apply the errata workarounds of each):")
    for target in model.target_implementations:
        lines.append(f"  {Midr(target.midr).describe()}, {target.revidr_aidr()}")
    lines.append(
        "Errata workarounds each host type alone adds to every guest (`errata MODEL` names them):"
    )
    lines.extend(_cost_lines(cost))
    frequency = model.timer_frequency_hz
    lines.append(f"Timer frequency: {'unknown' if frequency is None else f'{frequency} Hz'}")
    lines.append(f"What the pool loses ({plural(len(model.losses), 'field')}):")
    lines.extend(f"  {loss.explain()}" for loss in model.losses)
    lines.append("Registers the VMM writes on each host:")
    for group in model.host_groups:
        lines.append(f"  {group.label}: {', '.join(group.writes) or 'none'}")
    lines.extend(f"Note: {note}" for note in model.notes)
    lines.append(f"Decided for the VMM {vmm}")
    if output:
        lines.append(f"Pool model written to {output}")
    return "\n".join(lines)


# Up to this many hosts a report names them all on one line; past it, type by type.
NAMED_HOSTS = 8


def _hosts_lines(model: PoolModel) -> list[str]:
    hosts = model.hosts
    if len(hosts) <= NAMED_HOSTS:
        return [f"Pool of {plural(len(hosts), 'host')}: {', '.join(hosts)}"]
    groups = model.host_groups
    lines = [f"Pool of {plural(len(hosts), 'host')} of {plural(len(groups), 'type')}:"]
    return lines + [f"  {group.description}" for group in groups]


def _cmd_check(args: argparse.Namespace) -> int:
    model, profile = read_model(args.model), read_profile_argument(args.profile)
    if not args.json:
        say_unknown_masks([profile])
    result = check_with(model, profile, deciding_vmm(args.vmm))
    targets = list(model.target_implementations)
    table = load_errata_table()
    registers = {**model.id_registers, **model.firmware_registers}
    cost = [
        (i.target, added_by(table, targets, i.target, registers)) for i in profile.implementations
    ]
    if args.json:
        _print_json(
            {
                "format": CHECK_FORMAT,
                "host": result.host,
                "ok": result.ok,
                "problems": [p.to_json() for p in result.problems],
                "notes": list(result.notes),
                "errata_cost": _cost_json(cost),
            }
        )
    else:
        print(_describe_check(result, cost))
    return ExitStatus.OK if result.ok else ExitStatus.NO


def _describe_check(result: CheckResult, cost: Cost) -> str:
    verdict = "can" if result.ok else "cannot"
    lines = [f"Host {result.host} {verdict} present the pool model."]
    lines.extend(f"  {problem.message}" for problem in result.problems)
    lines.append("Errata workarounds each of its CPU types adds to every guest of the pool:")
    lines.extend(_cost_lines(cost))
    lines.extend(f"Note: {note}" for note in result.notes)
    return "\n".join(lines)
