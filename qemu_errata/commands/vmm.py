"""The ``render``, ``apply`` and ``verify`` command lines (shell).

Their bodies are in vmm_run, loaded only when one of them runs: they need
lxml, libvirt and qemu.qmp, and the CLI itself must load without them (a
nested host has only the standard library).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.core.vmms import load_vmm_table
from qemu_errata.vmm.dialects import Dialect
from qemu_errata.vmm.names import DEFAULT_SERIES, QemuSeries

_DIALECTS = [d.value for d in Dialect]


def register(commands: Subcommands) -> None:
    """Add ``render``, ``apply`` and ``verify``."""
    sub = add_command(commands, "render")
    sub.add_argument("model", type=Path, metavar="MODEL", help="the pool model to present")
    _dialect_options(
        sub,
        "the --domain's type: qemu-tcg for type qemu; for type kvm, qemu-kvm with what the "
        "arm64 QEMU of this machine can set, else the newest known VMM; required without "
        "--domain",
        vmms=True,
    )
    sub.add_argument(
        "--as",
        dest="form",
        choices=["args", "domain-xml"],
        help="what to print (default: domain-xml with --domain, else args)",
    )
    sub.add_argument("--domain", type=Path, metavar="FILE", help="domain XML to apply the model to")
    asked = sub.add_mutually_exclusive_group()
    asked.add_argument(
        "--qmp",
        metavar="SOCKET",
        help="ask the QEMU on this QMP socket for its property names and check it supports "
        "the dialect",
    )
    asked.add_argument(
        "--qemu-binary",
        metavar="PATH",
        help="the same, of this QEMU binary (started with -machine none -S, asked, stopped)",
    )
    sub.add_argument(
        "--qemu-series",
        choices=[s.value for s in QemuSeries],
        default=DEFAULT_SERIES.value,
        help="qemu-kvm without --qmp/--qemu-binary: the SYSREG property names of this version "
        "of the QEMU series (default: %(default)s)",
    )
    sub.add_argument(
        "--host-profile",
        metavar="PROFILE",
        help="qemu-kvm: set only the fields where the model differs from this host",
    )
    sub.add_argument("--json", action="store_true", help="print the result and notes as JSON")
    sub.set_defaults(run=_render)

    sub = add_command(commands, "apply")
    sub.add_argument("model", type=Path, metavar="MODEL", help="the pool model to apply")
    sub.add_argument("--connect", required=True, metavar="URI", help="libvirt connection URI")
    sub.add_argument("--domain", required=True, metavar="NAME", help="the defined domain's name")
    _dialect_options(sub, "the domain's type (kvm: qemu-kvm, qemu: qemu-tcg)")
    _staging_options(sub)
    sub.set_defaults(run=_apply)

    sub = add_command(commands, "unapply")
    sub.add_argument("--connect", required=True, metavar="URI", help="libvirt connection URI")
    sub.add_argument("--domain", required=True, metavar="NAME", help="the defined domain's name")
    _staging_options(sub)
    sub.set_defaults(run=_unapply)

    sub = add_command(commands, "verify")
    sub.add_argument("model", type=Path, metavar="MODEL", help="the pool model to compare with")
    sub.add_argument("--qmp", metavar="SOCKET", help="the VM's QMP socket")
    sub.add_argument(
        "--connect",
        metavar="URI",
        help="with --domain: use the libvirt domain's own monitor instead",
    )
    sub.add_argument("--domain", metavar="NAME", help="with --connect: the running domain")
    sub.add_argument("--json", action="store_true", help="print the differences as JSON")
    sub.set_defaults(run=_verify)


def _dialect_options(parser: argparse.ArgumentParser, default: str, *, vmms: bool = False) -> None:
    if vmms:  # a KVM VMM of the capability table: qemu-kvm with what that VMM can set
        names = [v.name for v in load_vmm_table() if v.name not in _DIALECTS]
        parser.add_argument(
            "--vmm",
            choices=[*_DIALECTS, *names],
            help=f"the VMM dialect, or a KVM VMM whose capabilities decide ({', '.join(names)}) "
            f"(default: {default})",
        )
    else:
        parser.add_argument(
            "--vmm", choices=_DIALECTS, help=f"the VMM dialect (default: {default})"
        )
    parser.add_argument(
        "--qemu-cpu", metavar="MODEL", help="qemu-tcg: the emulated CPU model (e.g. neoverse-n1)"
    )


def _render(args: argparse.Namespace) -> int:
    from qemu_errata.commands import vmm_run as vmm_handlers  # noqa: PLC0415 - see the module docstring

    return vmm_handlers.render(args)


def _apply(args: argparse.Namespace) -> int:
    from qemu_errata.commands import vmm_run as vmm_handlers  # noqa: PLC0415 - see the module docstring

    return vmm_handlers.apply(args)


def _staging_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--next-boot",
        action="store_true",
        help="allow a running domain: change its definition for the next boot",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the unified diff of the domain XML it would define, and change nothing",
    )


def _unapply(args: argparse.Namespace) -> int:
    from qemu_errata.commands import vmm_run as vmm_handlers  # noqa: PLC0415 - see the module docstring

    return vmm_handlers.unapply(args)


def _verify(args: argparse.Namespace) -> int:
    from qemu_errata.commands import vmm_run as vmm_handlers  # noqa: PLC0415 - see the module docstring

    return vmm_handlers.verify(args)
