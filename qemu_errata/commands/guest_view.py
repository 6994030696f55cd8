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
import platform
import re
import sys
from pathlib import Path
from typing import Any

from qemu_errata.commands import Subcommands
from qemu_errata.commands.arguments import add_timeout_option, positive_timeout, running_kernel
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.errata import known_kernels, load_errata_table, release_of
from qemu_errata.core.guest_log import GuestErratum, GuestLog, read_guest_log
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import PoolModel, check
from qemu_errata.errors import ExitStatus, InputError
from qemu_errata.files import read_model
from qemu_errata.probe.guest_boot import (
    DEFAULT_SECONDS,
    IDENTITY,
    GuestBoot,
    GuestBootError,
    boot_guest,
)
from qemu_errata.probe.kernel_image import read_image
from qemu_errata.probe.kvm import probe_kvm

GUEST_VIEW_FORMAT = "qemu-errata/guest-view/1"
_TAIL_LINES = 15
_LINUX_VERSION = re.compile(r"Linux version (\S+)")


def register(commands: Subcommands) -> None:
    """Register ``guest-view`` on the ``qemu-errata`` subcommands."""
    sub = commands.add_parser(
        "guest-view", help="boot a Linux guest presenting a pool model: what does it enable"
    )
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
    lines = boot.console_text.splitlines()
    log = read_guest_log(lines, load_errata_table(guest_release(lines)), known_to(boot))
    if args.json:
        print(json.dumps(guest_view_json(str(args.model), model, boot, log), indent=2))
    else:
        print(describe(str(args.model), model, boot, log))
    return ExitStatus.OK


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
    midr, revidr = boot.reads.get("MIDR_EL1"), boot.reads.get("REVIDR_EL1")
    if received or midr is None or midr.value is None:
        return received
    return [TargetImplementation(midr.value, None if revidr is None else revidr.value, None)]


def guest_view_json(name: str, model: PoolModel, boot: GuestBoot, log: GuestLog) -> dict[str, Any]:
    return {
        "format": GUEST_VIEW_FORMAT,
        "model": name,
        "host_kernel": platform.release(),
        "boot_seconds": round(boot.seconds, 1),
        "errata": [
            {"description": erratum.description, "ids": list(erratum.ids)} for erratum in log.errata
        ],
        "features": list(log.detected),
        "target_implementations": {
            "offered": boot.list_offered,
            "version_calls": boot.version_calls,
            "received": [
                {"index": answer.index, **(answer.entry.to_json() if answer.entry else {})}
                for answer in boot.answers
            ],
            "guest_log": list(log.target_lines),
        },
        "differing_registers": differing(model, boot),
        "id_registers": {
            name: {
                "guest": read.describe(),
                "model": None if (value := model.id_registers.get(name)) is None else f"{value:#x}",
            }
            for name, read in boot.reads.items()
        },
        "identity_pinned": boot.identity_pinned,
        "log": boot.console_text,
    }


def differing(model: PoolModel, boot: GuestBoot) -> list[str]:
    """The model's registers the guest read otherwise (an UNDEFINED MRS reads as zero, as a
    register KVM does not offer: kvm-validate's rule)."""
    return [
        name
        for name, read in boot.reads.items()
        if name in model.id_registers and (read.value or 0) != model.id_registers[name]
    ]


def describe(name: str, model: PoolModel, boot: GuestBoot, log: GuestLog) -> str:
    differ = differing(model, boot)
    lines = [
        f"{name}: a guest on this host's KVM (Linux {platform.release()}) ran to the end of its"
        " CPU capability detection"
        f" in {boot.seconds:.1f} s.",
        f"ID registers its code read with MRS: {len(boot.reads)}; "
        + (
            f"differing from the model: {', '.join(differ)}"
            if differ
            else "all as the model has them"
        ),
    ]
    for register in IDENTITY:
        read = boot.reads.get(register)
        if read is not None and read.value is not None:
            shown = Midr(read.value).describe() if register == "MIDR_EL1" else f"{read.value:#x}"
            lines.append(f"  {register}: {shown}")
    lines.extend(_target_lines(model, boot, log))
    lines.append(f"Errata workarounds it enabled ({len(log.errata)}):")
    lines.extend(f"  {_named(erratum)}" for erratum in log.errata)
    named = {erratum.description for erratum in log.errata}
    others = [d for d in log.detected if d not in named]
    lines.append(f"Other CPU features it detected ({len(others)}): {', '.join(others)}")
    return "\n".join(lines)


def _named(erratum: GuestErratum) -> str:
    """The kernel's description, and the table's ids where they say more."""
    if erratum.ids == (erratum.description,):
        return erratum.description
    ids = ", ".join(erratum.ids) or "not in the errata table"
    return f"{erratum.description} ({ids})"


def _target_lines(model: PoolModel, boot: GuestBoot, log: GuestLog) -> list[str]:
    if not boot.list_offered:
        lines = ["Target implementation list: not offered (this kernel has no BMAP_2)"]
    else:
        lines = [
            f"Target implementation list: the guest asked for {len(boot.answers)} of "
            f"{len(model.target_implementations)} entries"
        ]
    for answer in boot.answers:
        entry = answer.entry
        shown = (
            "INVALID_PARAMETER"
            if entry is None
            else f"{Midr(entry.midr).describe()}, {entry.revidr_aidr()}"
        )
        lines.append(f"  {answer.index}: {shown}")
    return lines + [f"  guest: {line}" for line in log.target_lines]
