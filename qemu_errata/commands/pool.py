"""The ``baseline`` and ``check`` commands: pool models from host profiles."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from qemu_errata.commands import Subcommands
from qemu_errata.core.errata import Workaround, added_by, load_errata_table
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import CheckResult, PoolModel, baseline, check
from qemu_errata.errors import ExitStatus, IncompatiblePoolError
from qemu_errata.files import read_model, read_profile, write_json


def register(commands: Subcommands) -> None:
    """Add ``baseline`` and ``check``."""
    sub = commands.add_parser("baseline", help="compute the pool model of host profiles")
    sub.add_argument("profiles", nargs="+", type=Path, metavar="PROFILE")
    sub.add_argument("-o", "--output", type=Path, metavar="MODEL", help="write the model here")
    sub.add_argument("--json", action="store_true", help="print the model (or refusal) as JSON")
    sub.set_defaults(run=_cmd_baseline)

    sub = commands.add_parser("check", help="can this host present this pool model")
    sub.add_argument("model", type=Path, metavar="MODEL")
    sub.add_argument("profile", type=Path, metavar="PROFILE")
    sub.add_argument("--json", action="store_true", help="print the verdict as JSON")
    sub.set_defaults(run=_cmd_check)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _cmd_baseline(args: argparse.Namespace) -> int:
    profiles = [read_profile(path) for path in args.profiles]
    try:
        model = baseline(profiles)
    except IncompatiblePoolError as refused:
        if args.json:
            _print_json({"refused": [b.message for b in refused.blockers]})
        else:
            print(f"The pool of {', '.join(p.host for p in profiles)} is refused:")
            for blocker in refused.blockers:
                print(f"  {blocker.message}")
        return ExitStatus.NO
    if args.output:
        write_json(args.output, model.to_json())
    cost = _errata_cost(model)
    if args.json:
        _print_json({**model.to_json(), "errata_cost": _cost_json(cost)})
    else:
        print(_describe_model(model, args.output, cost))
    return ExitStatus.OK


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


def _describe_model(model: PoolModel, output: Path | None, cost: Cost) -> str:
    lines = [f"Pool of {len(model.hosts)} hosts: {', '.join(model.hosts)}"]
    lines.append("Target implementations (guests apply the errata workarounds of each):")
    for target in model.target_implementations:
        lines.append(f"  {Midr(target.midr).describe()}, {target.revidr_aidr()}")
    lines.append(
        "Errata workarounds each host type alone adds to every guest (`errata MODEL` names them):"
    )
    lines.extend(_cost_lines(cost))
    frequency = model.timer_frequency_hz
    lines.append(f"Timer frequency: {'unknown' if frequency is None else f'{frequency} Hz'}")
    lines.append(f"What the pool loses ({len(model.losses)} fields):")
    lines.extend(f"  {loss.explain()}" for loss in model.losses)
    lines.append("Registers the VMM writes on each host:")
    for host, names in model.host_writes.items():
        lines.append(f"  {host}: {', '.join(names) or 'none'}")
    lines.extend(f"Note: {note}" for note in model.notes)
    if output:
        lines.append(f"Pool model written to {output}")
    return "\n".join(lines)


def _cmd_check(args: argparse.Namespace) -> int:
    model, profile = read_model(args.model), read_profile(args.profile)
    result = check(model, profile)
    targets = list(model.target_implementations)
    table = load_errata_table()
    registers = {**model.id_registers, **model.firmware_registers}
    cost = [
        (i.target, added_by(table, targets, i.target, registers)) for i in profile.implementations
    ]
    if args.json:
        _print_json(
            {
                "host": result.host,
                "ok": result.ok,
                "problems": [p.message for p in result.problems],
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
