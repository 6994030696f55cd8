"""What ``render``, ``apply`` and ``verify`` do (shell; commands/vmm.py declares them).

Data goes to stdout; notes (what a dialect cannot present) go to stderr, so
``$(qemu-errata render ...)`` captures the arguments alone. Exit status as in
errors.ExitStatus: 1 for a refusal (a QEMU lacking the dialect, a guest that
differs from the model); 2 for a running domain without ``--next-boot`` (usage).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import shlex
import sys
from pathlib import Path

from qemu_errata.commands.arguments import read_profile_argument
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.pool import PoolModel
from qemu_errata.errors import ExitStatus, InputError, UnsupportedDialectError
from qemu_errata.files import read_bytes, read_model
from qemu_errata.reports.render import render_json
from qemu_errata.reports.verify import describe_verify, verify_json
from qemu_errata.vmm.args import qemu_arguments
from qemu_errata.vmm.dialects import (
    Dialect,
    VmmCapabilities,
    VmmConfig,
    check_supported,
    lacking_in,
    probed_cpu_models,
    require_settable,
    vmm_config,
)
from qemu_errata.vmm.discovery import deciding_vmm, local_qemu_has_cpu
from qemu_errata.vmm.domain_xml import owned_parts
from qemu_errata.vmm.libvirt_domain import (
    LibvirtMonitor,
    Redefinition,
    apply_to_domain_xml,
    apply_to_libvirt,
    domain_dialect,
    libvirt_domain,
    unapply_from_libvirt,
)
from qemu_errata.vmm.names import (
    KVM_CPU_MODEL,
    VIRT_MACHINE_TYPE,
    QemuSeries,
    SysregNames,
    discovered_names,
)
from qemu_errata.vmm.qmp import Monitor, qmp_socket, read_capabilities, read_guest, started_qemu
from qemu_errata.vmm.verify import VerifyReport, compare


def _dialect(args: argparse.Namespace) -> Dialect | None:
    """--vmm's dialect: qemu-tcg, or qemu-kvm (named, or a KVM VMM of the table)."""
    if args.vmm is None:
        return None
    return Dialect.QEMU_TCG if args.vmm == Dialect.QEMU_TCG.value else Dialect.QEMU_KVM


def _print_notes(config: VmmConfig) -> None:
    for note in config.notes:
        print(f"qemu-errata: note: {note}", file=sys.stderr)


def render(args: argparse.Namespace) -> int:
    model = read_model(args.model)
    form = args.form or ("domain-xml" if args.domain is not None else "args")
    if args.domain is not None and form != "domain-xml":
        raise InputError(f"--domain {args.domain}: only with --as domain-xml")
    host = None if args.host_profile is None else read_profile_argument(Path(args.host_profile))
    data = None if args.domain is None else read_bytes(args.domain)
    dialect = _dialect(args)
    if dialect is None and data is None:
        raise InputError("render: --vmm is required without --domain")
    names = SysregNames(QemuSeries(args.qemu_series))
    capabilities = None
    kvm = (dialect or domain_dialect(data or b"", str(args.domain))) is Dialect.QEMU_KVM
    vmm = deciding_vmm(args.vmm) if kvm else None
    if kvm and _asks_qemu(args):
        # The names this QEMU gives its SYSREG properties, whatever series it carries.
        capabilities = asyncio.run(_capabilities(args, KVM_CPU_MODEL))
        offered = capabilities.cpu_properties or frozenset()
        names = SysregNames(names.series, discovered_names(offered, load_catalogue()))
    if data is not None:
        domain_xml, config = apply_to_domain_xml(
            data,
            model,
            str(args.domain),
            dialect,
            args.qemu_cpu,
            names=names,
            host=host,
            qemu_checks_cpu=_cpu_model_checked(args),
            vmm=vmm,
        )
    else:
        assert dialect is not None
        config = vmm_config(
            model,
            dialect,
            args.qemu_cpu,
            names=names,
            host=host,
            qemu_checks_cpu=_cpu_model_checked(args),
            vmm=vmm,
        )
        domain_xml = owned_parts(model, config) if form == "domain-xml" else ""
    if _asks_qemu(args):
        if capabilities is None:
            capabilities = asyncio.run(_capabilities(args, config.cpu_model))
        try:
            check_supported(config, capabilities)
        except UnsupportedDialectError as refused:
            print(f"qemu-errata: {args.qmp or args.qemu_binary}: {refused}", file=sys.stderr)
            return ExitStatus.NO
    elif vmm is not None and (lacking := lacking_in(config, vmm)):
        lacks = UnsupportedDialectError(config.dialect.value, lacking)
        print(f"qemu-errata: {vmm.describe()}: {lacks}", file=sys.stderr)
        return ExitStatus.NO
    require_settable(config)
    if args.json:
        print(json.dumps(render_json(config, form, domain_xml), indent=2))
    else:
        _print_notes(config)
        print(shlex.join(qemu_arguments(config)) if form == "args" else domain_xml)
    return ExitStatus.OK


def _asks_qemu(args: argparse.Namespace) -> bool:
    return args.qmp is not None or args.qemu_binary is not None


def _cpu_model_checked(args: argparse.Namespace) -> bool:
    """Whether a QEMU vouches for render's --qemu-cpu: the one asked, else this machine's."""
    return _asks_qemu(args) or _local_qemu_vouches(args.qemu_cpu)


def _local_qemu_vouches(cpu: str | None) -> bool:
    """Whether this machine's QEMU (which ``probe --backend qemu`` uses too) vouches for
    --qemu-cpu ``cpu``, a model no embedded probe describes: render's and apply's one rule."""
    return cpu is not None and cpu not in probed_cpu_models() and local_qemu_has_cpu(cpu)


async def _capabilities(args: argparse.Namespace, cpu_model: str) -> VmmCapabilities:
    """What the QEMU of --qmp or --qemu-binary offers for ``cpu_model``."""
    if args.qmp is not None:
        async with qmp_socket(args.qmp) as monitor:
            return await read_capabilities(monitor, cpu_model)
    async with started_qemu(args.qemu_binary) as monitor:
        return await read_capabilities(monitor, cpu_model, VIRT_MACHINE_TYPE)


def apply(args: argparse.Namespace) -> int:
    model = read_model(args.model)
    result = apply_to_libvirt(
        model,
        uri=args.connect,
        name=args.domain,
        dialect=_dialect(args),
        qemu_cpu=args.qemu_cpu,
        qemu_checks_cpu=_local_qemu_vouches(args.qemu_cpu),
        next_boot=args.next_boot,
        dry_run=args.dry_run,
    )
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
    redefinition = unapply_from_libvirt(
        uri=args.connect, name=args.domain, next_boot=args.next_boot, dry_run=args.dry_run
    )
    if args.dry_run:
        print(_diff(args.domain, redefinition, "without the pool model"), end="")
    elif not redefinition.changed:
        print(f"Domain {args.domain} carries no pool model: definition unchanged.")
    elif redefinition.running:
        print(
            f"Domain {args.domain} redefined without the pool model; it runs the old definition "
            "until its next boot."
        )
    else:
        print(f"Domain {args.domain} redefined without the pool model, with its own <cpu> back.")
    return ExitStatus.OK


def _diff(name: str, redefinition: Redefinition, after: str) -> str:
    """The unified diff a redefinition makes to the domain XML (empty: none), every line of it
    ending in a newline (libvirt's XML has none after its last line)."""
    return "".join(
        difflib.unified_diff(
            [line + "\n" for line in redefinition.old_xml.splitlines()],
            [line + "\n" for line in redefinition.new_xml.splitlines()],
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
        print(json.dumps(verify_json(report), indent=2))
    else:
        print(describe_verify(report))
    return ExitStatus.OK if report.ok else ExitStatus.NO


async def _verify_socket(socket: str, model: PoolModel) -> VerifyReport:
    async with qmp_socket(socket) as monitor:
        return await _verify(monitor, model)


async def _verify(monitor: Monitor, model: PoolModel) -> VerifyReport:
    catalogue = load_catalogue()
    return compare(model, await read_guest(monitor, catalogue), catalogue)
