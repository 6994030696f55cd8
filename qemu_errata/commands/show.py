"""The ``show`` and ``profiles`` commands: documents in words, and the shipped profiles."""

from __future__ import annotations

import argparse
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.commands.arguments import read_document_argument
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.midr import Midr
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import ExitStatus
from qemu_errata.reports.show import model_lines, profile_lines


def register(commands: Subcommands) -> None:
    """Add ``show`` and ``profiles``."""
    sub = add_command(commands, "show")
    sub.add_argument(
        "document",
        type=Path,
        metavar="FILE|NAME",
        help="a profile or model file, or an embedded profile's name (see `qemu-errata profiles`)",
    )
    sub.set_defaults(run=_show)
    sub = add_command(commands, "profiles")
    sub.set_defaults(run=_profiles)


def _show(args: argparse.Namespace) -> int:
    document = read_document_argument(args.document)
    catalogue = load_catalogue()
    if isinstance(document, HostProfile):
        lines = profile_lines(document, catalogue)
    else:
        lines = model_lines(document, catalogue)
    print("\n".join(lines))
    return ExitStatus.OK


def _profiles(args: argparse.Namespace) -> int:
    del args  # no options
    print("Embedded host profiles (usable by name wherever a profile is read):")
    for name in embedded_profile_names():
        print(f"  {name:<26} {_summary(load_embedded_profile(name))}")
    return ExitStatus.OK


def _summary(profile: HostProfile) -> str:
    cpus = ", ".join(Midr(i.midr).describe() for i in profile.implementations)
    if profile.provenance.get("backend") == "kvm":
        return f"{cpus}; KVM of Linux {profile.provenance.get('kernel')}, real writable masks"
    return f"{cpus}; QEMU's CPU model (no KVM: writable masks unknown)"
