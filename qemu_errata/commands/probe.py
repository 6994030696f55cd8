"""``qemu-errata probe``: write a host profile from one of the three backends.

Without ``-o`` the profile is printed as JSON; with it, one line on stdout (as ``baseline
-o`` and ``profiles --export`` print theirs) says what was probed and where the profile
went. A probe that fails writes nothing and exits 2 with one line. This module uses only
the standard library (the qemu backend, which needs qemu.qmp and lxml, is imported only
when asked for), so the kvm and sysfs probes also run on minimal guests.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import ExitStatus, InputError
from qemu_errata.files import write_json
from qemu_errata.probe.kvm import probe_kvm
from qemu_errata.probe.sysfs import DEFAULT_SYSFS_ROOT, probe_sysfs
from qemu_errata.reports.probe import probe_narration, probe_written

BACKENDS = ("kvm", "qemu", "sysfs")


def register(commands: Subcommands) -> None:
    """Register ``probe`` on the ``qemu-errata`` subcommands."""
    sub = add_command(commands, "probe")
    sub.add_argument(
        "--backend",
        choices=BACKENDS,
        default="kvm",
        help="kvm: this host's KVM (default); qemu: a QEMU-emulated CPU; sysfs: CPU types only",
    )
    sub.add_argument("--qemu-cpu", metavar="MODEL", help="QEMU CPU model (--backend qemu)")
    sub.add_argument(
        "--sysfs-root",
        type=Path,
        metavar="DIR",
        help=f"where sysfs is (--backend kvm or sysfs; default {DEFAULT_SYSFS_ROOT})",
    )
    sub.add_argument(
        "--host",
        metavar="NAME",
        help="host name in the profile (default: this host's name, or qemu-MODEL)",
    )
    sub.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the profile here")
    sub.add_argument(
        "--verbose",
        action="store_true",
        help="tell on stderr what was read and from where (registers, masks, CPUs, timer)",
    )
    sub.set_defaults(run=run_probe)


def run_probe(args: argparse.Namespace) -> int:
    started = time.monotonic()
    profile = probe(args.backend, args.qemu_cpu, args.sysfs_root, args.host)
    if args.verbose:
        for line in probe_narration(profile, time.monotonic() - started):
            print(line, file=sys.stderr)
    if args.output:
        write_json(args.output, profile.to_json())
        print(probe_written(profile, str(args.output)))
    else:
        print(json.dumps(profile.to_json(), indent=2))
    return ExitStatus.OK


def probe(
    backend: str, qemu_cpu: str | None, sysfs_root: Path | None, host: str | None
) -> HostProfile:
    """Run one backend; InputError for options that do not go with it."""
    if backend == "qemu":
        if not qemu_cpu:
            raise InputError("probe --backend qemu: --qemu-cpu MODEL is required")
        if sysfs_root is not None:
            raise InputError("probe --backend qemu: --sysfs-root does not apply (no sysfs read)")
        from qemu_errata.probe.qemu import probe_qemu  # noqa: PLC0415 - not stdlib-only

        return probe_qemu(qemu_cpu, host)
    if qemu_cpu is not None:
        raise InputError(f"probe --backend {backend}: --qemu-cpu applies to --backend qemu only")
    root = sysfs_root or DEFAULT_SYSFS_ROOT
    if backend == "sysfs":
        return probe_sysfs(root, host)
    return probe_kvm(host, root)
