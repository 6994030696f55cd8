"""``qemu-errata qemu-check MODEL``: a real QEMU under this host's KVM, checked (vmm.qemu_check).

Made to run on the nested Linux KVM host (``qemu-errata nested --cpu MODEL
--kernel 7.2 -- qemu-check MODEL``), which then carries Debian's QEMU:
discovery of the SYSREG and impl-cpu properties that QEMU has and lacks,
a ``-accel kvm -cpu host`` VM started with the arguments ``render`` gives
for the model, and ``verify``'s comparison against that VM. Exit status: 0
when the QEMU had all the model needs, the VM ran and verify vouches for
it; 1 otherwise (the report says which step and why); 2 for bad input (no
such QEMU, a QEMU that does not answer, a bad model). Standard library only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.commands.arguments import (
    add_timeout_option,
    positive_timeout,
    read_profile_argument,
    running_kernel,
)
from qemu_errata.errors import ExitStatus, InputError
from qemu_errata.reports.qemu_check import describe, qemu_check_json

_DEFAULT_TIMEOUT_SECONDS = 120.0


def register(commands: Subcommands) -> None:
    """Register ``qemu-check`` on the ``qemu-errata`` subcommands."""
    sub = add_command(
        commands,
        "qemu-check",
    )
    sub.add_argument("model", type=Path, metavar="MODEL", help="the pool model to start a VM with")
    sub.add_argument(
        "--host-profile",
        type=Path,
        metavar="PROFILE",
        help="render for this host: set only the fields where the model differs from it",
    )
    sub.add_argument(
        "--qemu-binary",
        default="qemu-system-aarch64",
        metavar="PATH",
        help="the QEMU to check (default: %(default)s)",
    )
    sub.add_argument(
        "--kernel",
        type=Path,
        metavar="IMAGE",
        help="the guest's arm64 kernel (default: /boot/vmlinuz-$(uname -r))",
    )
    add_timeout_option(
        sub, _DEFAULT_TIMEOUT_SECONDS, "give the guest kernel this long to print its first line"
    )
    sub.add_argument("--json", action="store_true", help="print the report as JSON")
    sub.set_defaults(run=run_qemu_check)


def run_qemu_check(args: argparse.Namespace) -> int:
    # Loaded here: it starts processes and speaks QMP, which no other command needs.
    from qemu_errata.core.catalogue import load_catalogue  # noqa: PLC0415
    from qemu_errata.files import read_model  # noqa: PLC0415
    from qemu_errata.vmm.qemu_check import check_qemu  # noqa: PLC0415

    positive_timeout(args.timeout)
    model = read_model(args.model)
    host = None if args.host_profile is None else read_profile_argument(args.host_profile)
    kernel = args.kernel or running_kernel("qemu-check")
    if not kernel.is_file():
        raise InputError(f"--kernel {kernel}: no such file")
    report = check_qemu(
        args.qemu_binary, model, host, kernel, load_catalogue(), timeout=args.timeout
    )
    if args.json:
        print(json.dumps(qemu_check_json(report), indent=2))
    else:
        print(describe(qemu_check_json(report)))
    return ExitStatus.OK if report.ok else ExitStatus.NO
