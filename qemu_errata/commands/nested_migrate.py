"""``qemu-errata nested-migrate MODEL --from CPU:KERNEL --to CPU:KERNEL``: a real live migration.

Two nested arm64 KVM hosts, the heartbeat guest started on the source with
what ``render`` gives for the model, migrated live to the destination
(:mod:`qemu_errata.nested.migration`). Exit status: 0 migrated and the
guest kept counting; 1 refused (by the hook or QEMU) or failed; 2 bad
input; 125 when a nested host itself failed to boot.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.errors import ExitStatus, InputError, NestedError


def register(commands: Subcommands) -> None:
    """Register ``nested-migrate`` on the ``qemu-errata`` subcommands."""
    sub = add_command(
        commands,
        "nested-migrate",
        description=(
            "Boots two nested arm64 KVM hosts (QEMU TCG, Debian kernels, Debian's QEMU "
            "11.1.3), starts a heartbeat guest on the source with what render gives for "
            "MODEL, runs the libvirt hook as libvirt would (unless --no-hook) and migrates "
            "the guest live to the destination. Progress goes to stderr."
        ),
    )
    sub.add_argument("model", type=Path, metavar="MODEL", help="the guest's pool model")
    sub.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="CPU:KERNEL",
        help="the source host: its QEMU CPU model and kernel (6.12, 7.2, 7.3)",
    )
    sub.add_argument(
        "--to",
        dest="destination",
        required=True,
        metavar="CPU:KERNEL",
        help="the destination host, likewise",
    )
    sub.add_argument("--no-hook", action="store_true", help="do not run the hook")
    sub.add_argument("--json", action="store_true", help="print the report as JSON")
    sub.set_defaults(run=run_nested_migrate)


def run_nested_migrate(args: argparse.Namespace) -> int:
    # Loaded here: only this command boots a fleet.
    from qemu_errata.files import read_model  # noqa: PLC0415
    from qemu_errata.nested.boot import check_cpu_model  # noqa: PLC0415
    from qemu_errata.nested.fleet import HostSpec  # noqa: PLC0415
    from qemu_errata.nested.migration import nested_migrate  # noqa: PLC0415

    read_model(args.model)
    source = HostSpec.parse(args.source, "--from")
    destination = HostSpec.parse(args.destination, "--to")
    for option, spec in (("--from", source), ("--to", destination)):
        try:
            check_cpu_model(spec.cpu)
        except InputError:
            raise InputError(
                f"{option} {spec.cpu}:{spec.kernel}: QEMU has no CPU model {spec.cpu}"
            ) from None
    if not args.model.is_file():
        raise InputError(f"{args.model}: the model must be a file (render reads it)")
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"nested-migrate: {time.monotonic() - started:6.1f} s {message}", file=sys.stderr)

    try:
        report = nested_migrate(
            args.model, source, destination, hook=not args.no_hook, progress=progress
        )
    except NestedError as error:
        print(f"qemu-errata nested-migrate: {error}", file=sys.stderr)
        return error.exit_status
    data = report.to_json()
    print(json.dumps(data, indent=2) if args.json else describe(data))
    return ExitStatus.OK if data["outcome"] == "migrated" else ExitStatus.NO


def describe(data: dict[str, Any]) -> str:
    """The report as text; its last line is the outcome."""
    source, destination = data["from"], data["to"]
    lines = [
        f"from {source.get('host', source['cpu'])} (Linux {source.get('kernel_release', '?')}) "
        f"to {destination.get('host', destination['cpu'])} "
        f"(Linux {destination.get('kernel_release', '?')}), hook {'on' if data['hook'] else 'off'}",
        f"QEMU arguments (render): {' '.join(data['qemu_arguments'])}",
    ]
    boot = data["guest_boot"]
    if boot:
        lines.append(f"guest's kernel found PSCI v{boot.get('psci_version')} at boot")
    for run in data["hook_runs"]:
        said = f": {run['stderr']}" if run["stderr"] else ""
        lines.append(
            f"hook on {run['host']}: {' '.join(run['argv'])} -> exit {run['exit_status']}"
            f" ({run['ms']} ms){said}"
        )
    for key in ("guest_before", "guest_after"):
        seen = data[key]
        if seen is not None:
            registers = " ".join(f"{name}={value}" for name, value in seen["registers"].items())
            lines.append(f"{key}: beat {seen['beat']} on {seen['host']}: {registers}")
    if data["total_ms"] is not None:
        lines.append(
            f"migration: total {data['total_ms']} ms, downtime {data['downtime_ms']} ms, "
            f"{data['transferred_bytes']} bytes; heartbeat gap {data['heartbeat_gap_ms']} ms"
        )
    lines.append(f"seconds: {data['seconds']}")
    outcome = data["outcome"]
    if data["refused_by"]:
        outcome += f" by {data['refused_by']} ({data['phase']})"
    if data["message"]:
        outcome += f": {data['message']}"
    running = "keeps running" if data["guest_running_after"] else "is not running"
    lines.append(f"{outcome}; the guest {running}")
    return "\n".join(lines)
