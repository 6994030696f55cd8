"""``qemu-errata guest-view MODEL``: boot a real Linux guest presenting the model; what it enables.

On an arm64 KVM host: this host is probed and ``check``ed against the
model first (a host that cannot present it is refused with check's
reasons, exit 2); then probe.guest_boot boots the kernel (``--kernel``,
default this host's own /boot/vmlinuz-RELEASE) in a one-vCPU KVM VM that
presents the model on QEMU's virt board (KASLR and RNG seeds in /chosen) and
answers the target implementation list, with a busybox userspace
(``--busybox``, default /bin/busybox: Debian's busybox-static) that prints
/sys/devices/system/cpu/vulnerabilities. The guest's own words are reported:
the errata workarounds it enabled, the CPU features it detected, what it says
of the target list (with the list calls it made), the ID registers its first
instructions read with MRS, its vulnerabilities files, and its console; then
it is judged against the ``errata`` prediction for its kernel release
(core.guest_judgement). Exit status: 0 when the guest agrees with the
prediction, 1 when it differs (each difference listed) or did not finish in
time (the end of its console on stderr), 2 for bad input (not an arm64 Image,
no KVM, no static arm64 busybox, a model the host cannot present). Standard
library only: it runs on the nested host.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.commands.arguments import add_timeout_option, positive_timeout, running_kernel
from qemu_errata.core.board import guest_board
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import profiles_for_series
from qemu_errata.core.errata import kernel_view, known_kernels, load_errata_table, release_of
from qemu_errata.core.guest_judgement import judge
from qemu_errata.core.guest_log import read_guest_log, read_vulnerabilities
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import MIDR_REGISTER, REVIDR_REGISTER
from qemu_errata.core.pool import check
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import ExitStatus, InputError
from qemu_errata.files import read_model
from qemu_errata.probe.guest_boot import (
    DEFAULT_SECONDS,
    GuestBoot,
    GuestBootError,
    boot_guest,
)
from qemu_errata.probe.guest_userspace import (
    COMMAND_LINE as USERSPACE_COMMAND_LINE,
)
from qemu_errata.probe.guest_userspace import (
    DEFAULT_BUSYBOX,
    is_arm64_executable,
    userspace_initramfs,
)
from qemu_errata.probe.kernel_image import read_image
from qemu_errata.probe.kvm import probe_kvm
from qemu_errata.reports.guest_view import GuestView, describe, guest_view_json

_TAIL_LINES = 15
_LINUX_VERSION = re.compile(r"Linux version (\S+)")


def register(commands: Subcommands) -> None:
    """Register ``guest-view`` on the ``qemu-errata`` subcommands."""
    sub = add_command(commands, "guest-view")
    sub.add_argument("model", type=Path, metavar="MODEL", help="the pool model the VM presents")
    sub.add_argument(
        "--kernel",
        type=Path,
        metavar="IMAGE",
        help="arm64 kernel Image, raw or gzip (default: /boot/vmlinuz-$(uname -r))",
    )
    sub.add_argument(
        "--busybox",
        type=Path,
        default=Path(DEFAULT_BUSYBOX),
        metavar="FILE",
        help=f"static arm64 busybox for the guest's userspace (default: {DEFAULT_BUSYBOX})",
    )
    sub.add_argument(
        "--guest-cmdline",
        metavar="WORDS",
        help="more of the guest's kernel command line, as errata --guest-cmdline takes it",
    )
    add_timeout_option(sub, DEFAULT_SECONDS, "give the guest this long to print its words")
    sub.add_argument("--json", action="store_true", help="print the report as JSON")
    sub.set_defaults(run=run_guest_view)


def run_guest_view(args: argparse.Namespace) -> int:
    positive_timeout(args.timeout)
    board = guest_board(args.guest_cmdline)
    model = read_model(args.model)
    image = read_image(args.kernel or running_kernel("guest-view"))
    userspace = userspace_initramfs(read_busybox(args.busybox))
    host = probe_kvm()
    result = check(model, host)
    if not result.ok:
        reasons = "; ".join(problem.message for problem in result.problems)
        raise InputError(
            f"{args.model}: host {result.host} cannot present it: {reasons}"
            + _series_hint(model.hosts, host)
        )
    try:
        boot = boot_guest(
            model,
            image,
            load_catalogue(),
            seconds=args.timeout,
            userspace=userspace,
            command_line=" ".join(w for w in (USERSPACE_COMMAND_LINE, board.command_line) if w),
        )
    except GuestBootError as error:
        print(f"qemu-errata: guest-view: {error}", file=sys.stderr)
        for line in error.console.splitlines()[-_TAIL_LINES:]:
            print(f"  console: {line}", file=sys.stderr)
        return ExitStatus.NO
    lines = boot.console_text.splitlines()
    table = load_errata_table(guest_release(lines))
    known = known_to(boot)
    log = read_guest_log(lines, table, known)
    registers = {**host.firmware_registers, **model.firmware_registers, **model.id_registers}
    view = kernel_view(table, known, registers, board=board)
    judged = judge(table.kernel, view, log, lines, read_vulnerabilities(lines))
    seen = GuestView(str(args.model), model, boot, log, board, judged)
    print(json.dumps(guest_view_json(seen), indent=2) if args.json else describe(seen))
    return ExitStatus.OK if judged.agrees else ExitStatus.NO


def read_busybox(path: Path) -> bytes:
    """The busybox the guest's userspace runs; InputError unless a static arm64 executable."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read the guest's busybox: {error.strerror}") from None
    if not is_arm64_executable(data):
        raise InputError(f"{path}: not an arm64 executable (a static busybox is needed)")
    return data


def _series_hint(hosts: tuple[str, ...], host: HostProfile) -> str:
    """A pool of embedded profiles of another kernel than this host's: the ones of its own."""
    profiles = profiles_for_series(hosts, host.kernel_version)
    if not profiles:
        return ""
    return (
        f" (the pool is of embedded profiles of another kernel than this host's Linux "
        f"{host.provenance.get('kernel')}: `qemu-errata baseline {' '.join(profiles)}` "
        "computes one for it)"
    )


def guest_release(console: list[str]) -> str | None:
    """The guest's release when the errata table knows it ("Linux version 7.2.13+deb14-arm64
    ..."), so its log is read with that release's rows; else None (the newest)."""
    for line in console:
        found = _LINUX_VERSION.search(line)
        if found:
            release = release_of(found.group(1))
            return release if release in known_kernels() else None
    return None


def known_to(boot: GuestBoot) -> list[TargetImplementation]:
    """The implementations the guest was told of: the list it received, else the MIDR and
    REVIDR its code read."""
    received = [answer.entry for answer in boot.answers if answer.entry is not None]
    midr, revidr = boot.reads.get(MIDR_REGISTER), boot.reads.get(REVIDR_REGISTER)
    if received or midr is None or midr.value is None:
        return received
    return [TargetImplementation(midr.value, None if revidr is None else revidr.value, None)]
