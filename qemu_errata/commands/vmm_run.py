"""What ``render``, ``apply`` and ``verify`` do (shell; commands/vmm.py declares them).

Data goes to stdout; notes (what a dialect cannot present) go to stderr, so
``$(qemu-errata render ...)`` captures the arguments alone. Exit status as in
errors.ExitStatus: 1 for a refusal (a QEMU lacking the dialect, a running
domain, a guest that differs from the model).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import shlex
import sys
from typing import Any

from qemu_errata.core.pool import PoolModel
from qemu_errata.errors import DomainRunningError, ExitStatus, InputError, UnsupportedDialectError
from qemu_errata.files import read_bytes, read_model
from qemu_errata.vmm.args import qemu_arguments
from qemu_errata.vmm.dialects import Dialect, VmmConfig, check_supported, vmm_config
from qemu_errata.vmm.domain_xml import owned_parts
from qemu_errata.vmm.libvirt_domain import (
    LibvirtMonitor,
    Redefinition,
    apply_to_domain_xml,
    apply_to_libvirt,
    libvirt_domain,
    unapply_from_libvirt,
)
from qemu_errata.vmm.qmp import Monitor, qmp_socket, read_capabilities, read_guest
from qemu_errata.vmm.verify import VerifyReport, compare

RENDER_FORMAT = "qemu-errata/render/1"


def _dialect(args: argparse.Namespace) -> Dialect | None:
    return None if args.vmm is None else Dialect(args.vmm)


def _print_notes(config: VmmConfig) -> None:
    for note in config.notes:
        print(f"qemu-errata: note: {note}", file=sys.stderr)


def render(args: argparse.Namespace) -> int:
    model = read_model(args.model)
    if args.domain is not None and args.form != "domain-xml":
        raise InputError(f"--domain {args.domain}: only with --as domain-xml")
    if args.domain is not None:
        domain_xml, config = apply_to_domain_xml(
            read_bytes(args.domain), model, str(args.domain), _dialect(args), args.qemu_cpu
        )
    else:
        dialect = _dialect(args)
        if dialect is None:
            raise InputError("render: --vmm is required without --domain")
        config = vmm_config(model, dialect, args.qemu_cpu)
        domain_xml = owned_parts(model, config) if args.form == "domain-xml" else ""
    if args.qmp is not None:
        try:
            asyncio.run(_check_qmp(args.qmp, config))
        except UnsupportedDialectError as refused:
            print(f"qemu-errata: {args.qmp}: {refused}", file=sys.stderr)
            return ExitStatus.NO
    if args.json:
        result: dict[str, Any] = (
            {"arguments": qemu_arguments(config)}
            if args.form == "args"
            else {"domain_xml": domain_xml}
        )
        document = {"format": RENDER_FORMAT, **result, "notes": list(config.notes)}
        print(json.dumps(document, indent=2))
    else:
        _print_notes(config)
        print(shlex.join(qemu_arguments(config)) if args.form == "args" else domain_xml)
    return ExitStatus.OK


async def _check_qmp(socket: str, config: VmmConfig) -> None:
    async with qmp_socket(socket) as monitor:
        check_supported(config, await read_capabilities(monitor, config.cpu_model))


def apply(args: argparse.Namespace) -> int:
    model = read_model(args.model)
    try:
        result = apply_to_libvirt(
            model,
            uri=args.connect,
            name=args.domain,
            dialect=_dialect(args),
            qemu_cpu=args.qemu_cpu,
            next_boot=args.next_boot,
            dry_run=args.dry_run,
        )
    except DomainRunningError as refused:
        print(f"qemu-errata: {refused}", file=sys.stderr)
        return ExitStatus.NO
    _print_notes(result.config)
    redefinition = result.redefinition
    if args.dry_run:
        print(_diff(args.domain, redefinition, "with the pool model"), end="")
    elif not redefinition.changed:
        print(f"Domain {args.domain} already presents this pool model: definition unchanged.")
    elif redefinition.running:
        print(f"Domain {args.domain} redefined; it runs the old definition until its next boot.")
    else:
        print(
            f"Domain {args.domain} redefined with the pool model ({result.config.dialect.value})."
        )
    return ExitStatus.OK


def unapply(args: argparse.Namespace) -> int:
    try:
        redefinition = unapply_from_libvirt(
            uri=args.connect, name=args.domain, next_boot=args.next_boot, dry_run=args.dry_run
        )
    except DomainRunningError as refused:
        print(f"qemu-errata: {refused}", file=sys.stderr)
        return ExitStatus.NO
    if args.dry_run:
        print(_diff(args.domain, redefinition, "without the pool model"), end="")
    elif redefinition.running:
        print(
            f"Domain {args.domain} redefined without the pool model; it runs the old definition "
            "until its next boot."
        )
    else:
        print(f"Domain {args.domain} redefined without the pool model, with its own <cpu> back.")
    return ExitStatus.OK


def _diff(name: str, redefinition: Redefinition, after: str) -> str:
    """The unified diff a redefinition makes to the domain XML (empty: none)."""
    return "".join(
        difflib.unified_diff(
            redefinition.old_xml.splitlines(keepends=True),
            redefinition.new_xml.splitlines(keepends=True),
            fromfile=f"{name} (defined)",
            tofile=f"{name} ({after})",
        )
    )


def verify(args: argparse.Namespace) -> int:
    model = read_model(args.model)
    if args.qmp is not None and args.connect is None and args.domain is None:
        report = asyncio.run(_verify_socket(args.qmp, model))
    elif args.qmp is None and args.connect is not None and args.domain is not None:
        with libvirt_domain(args.connect, args.domain) as domain:
            monitor = LibvirtMonitor(domain, f"{args.connect}: domain {args.domain}")
            report = asyncio.run(_verify(monitor, model))
    else:
        raise InputError("verify: give either --qmp SOCKET or both --connect URI and --domain NAME")
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(_describe_report(report))
    return ExitStatus.OK if report.ok else ExitStatus.NO


async def _verify_socket(socket: str, model: PoolModel) -> VerifyReport:
    async with qmp_socket(socket) as monitor:
        return await _verify(monitor, model)


async def _verify(monitor: Monitor, model: PoolModel) -> VerifyReport:
    return compare(model, await read_guest(monitor))


def _describe_report(report: VerifyReport) -> str:
    lines = [
        "The guest presents the pool model."
        if report.ok
        else "The guest differs from the pool model:"
    ]
    lines.extend(f"  {difference}" for difference in report.differences)
    lines.extend(f"Note: {note}" for note in report.notes)
    return "\n".join(lines)
