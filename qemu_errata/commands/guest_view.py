"""``qemu-errata guest-view MODEL``: boot a real Linux guest presenting the model; what it enables.

On an arm64 KVM host: this host is probed and ``check``ed against the
model first (a host that cannot present it is refused with check's
reasons, exit 2); then probe.guest_boot boots the kernel (``--kernel``,
default this host's own /boot/vmlinuz-RELEASE) in a one-vCPU KVM VM that
presents the model and answers the target implementation list, and the
guest's own words are reported: the errata workarounds it enabled, the CPU
features it detected, what it says of the target list (with the list calls
it made), the ID registers its first instructions read with MRS, and its
console. Exit status: 0 when the guest got through its CPU capability
detection, 1 when it did not in time (the end of its console on stderr),
2 for bad input (not an arm64 Image, no KVM, a model the host cannot
present). Standard library only: it runs on the nested host.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.commands.arguments import add_timeout_option, positive_timeout, running_kernel
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.errata import load_errata_table
from qemu_errata.core.guest_log import read_guest_log
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.pool import check
from qemu_errata.errors import ExitStatus, InputError
from qemu_errata.files import read_model
from qemu_errata.probe.guest_boot import (
    DEFAULT_SECONDS,
    GuestBoot,
    GuestBootError,
    boot_guest,
)
from qemu_errata.probe.kernel_image import read_image
from qemu_errata.probe.kvm import probe_kvm
from qemu_errata.reports.guest_view import describe, guest_view_json

_TAIL_LINES = 15


def register(commands: Subcommands) -> None:
    """Register ``guest-view`` on the ``qemu-errata`` subcommands."""
    sub = add_command(commands, "guest-view")
    sub.add_argument("model", type=Path, metavar="MODEL")
    sub.add_argument(
        "--kernel",
        type=Path,
        metavar="IMAGE",
        help="arm64 kernel Image, raw or gzip (default: /boot/vmlinuz-$(uname -r))",
    )
    add_timeout_option(sub, DEFAULT_SECONDS, "give the guest this long to detect its CPU")
    sub.add_argument("--json", action="store_true", help="print the report as JSON")
    sub.set_defaults(run=run_guest_view)


def run_guest_view(args: argparse.Namespace) -> int:
    positive_timeout(args.timeout)
    model = read_model(args.model)
    image = read_image(args.kernel or running_kernel())
    result = check(model, probe_kvm())
    if not result.ok:
        reasons = "; ".join(problem.message for problem in result.problems)
        raise InputError(f"{args.model}: host {result.host} cannot present it: {reasons}")
    try:
        boot = boot_guest(model, image, load_catalogue(), seconds=args.timeout)
    except GuestBootError as error:
        print(f"qemu-errata: guest-view: {error}", file=sys.stderr)
        for line in error.console.splitlines()[-_TAIL_LINES:]:
            print(f"  console: {line}", file=sys.stderr)
        return ExitStatus.NO
    log = read_guest_log(boot.console_text.splitlines(), load_errata_table(), known_to(boot))
    if args.json:
        print(json.dumps(guest_view_json(str(args.model), model, boot, log), indent=2))
    else:
        print(describe(str(args.model), model, boot, log))
    return ExitStatus.OK


def known_to(boot: GuestBoot) -> list[TargetImplementation]:
    """The implementations the guest was told of: the list it received, else the MIDR and
    REVIDR its code read."""
    received = [answer.entry for answer in boot.answers if answer.entry is not None]
    midr, revidr = boot.reads.get("MIDR_EL1"), boot.reads.get("REVIDR_EL1")
    if received or midr is None or midr.value is None:
        return received
    return [TargetImplementation(midr.value, None if revidr is None else revidr.value, None)]
