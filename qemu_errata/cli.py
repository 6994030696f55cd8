"""The ``qemu-errata`` command line.

Exit status: 0 success or allowed; 1 a negative answer (pool refused, host
cannot join); 2 bad input or usage, with one line naming the input and the
problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from libvirt_hooks.install import add_hook_command
from qemu_errata.demo import add_demo_command
from qemu_errata.errors import InputError
from qemu_errata.files import read_model, read_profile, write_json
from qemu_errata.kvm_validate import add_kvm_validate_command
from qemu_errata.midr import Midr
from qemu_errata.nested.command import add_nested_command
from qemu_errata.pool import CheckResult, IncompatiblePoolError, PoolModel, baseline, check
from qemu_errata.probe.command import add_probe_command
from qemu_errata.vmm_commands import register as register_vmm_commands

EXIT_OK = 0
EXIT_NO = 1
EXIT_BAD_INPUT = 2

Command = Callable[[argparse.Namespace], int]


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
        return EXIT_NO
    if args.output:
        write_json(args.output, model.to_json())
    if args.json:
        _print_json(model.to_json())
    else:
        print(_describe_model(model, args.output))
    return EXIT_OK


def _describe_model(model: PoolModel, output: Path | None) -> str:
    lines = [f"Pool of {len(model.hosts)} hosts: {', '.join(model.hosts)}"]
    lines.append("Target implementations (guests apply the errata workarounds of each):")
    for target in model.target_implementations:
        lines.append(f"  {Midr(target.midr).describe()}, {target.revidr_aidr()}")
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
    result = check(read_model(args.model), read_profile(args.profile))
    if args.json:
        _print_json({
            "host": result.host,
            "ok": result.ok,
            "problems": [p.message for p in result.problems],
            "notes": list(result.notes),
        })
    else:
        print(_describe_check(result))
    return EXIT_OK if result.ok else EXIT_NO


def _describe_check(result: CheckResult) -> str:
    verdict = "can" if result.ok else "cannot"
    lines = [f"Host {result.host} {verdict} present the pool model."]
    lines.extend(f"  {problem.message}" for problem in result.problems)
    lines.extend(f"Note: {note}" for note in result.notes)
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qemu-errata",
        description="Safe live migration of arm64 KVM guests across different hosts.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    register_vmm_commands(commands)
    add_nested_command(commands)
    add_hook_command(commands)
    add_probe_command(commands)
    add_demo_command(commands)
    add_kvm_validate_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Command = args.run
    try:
        return run(args)
    except InputError as error:
        print(f"qemu-errata: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
