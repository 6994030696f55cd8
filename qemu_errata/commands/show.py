"""The ``show`` and ``profiles`` commands: documents in words, and the shipped profiles."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.commands.arguments import read_document_argument
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import ExitStatus, InputError
from qemu_errata.files import write_json
from qemu_errata.reports.profiles import profiles_json, profiles_lines
from qemu_errata.reports.show import model_lines, profile_lines, show_json


def register(commands: Subcommands) -> None:
    """Add ``show`` and ``profiles``."""
    sub = add_command(commands, "show")
    sub.add_argument(
        "document",
        type=Path,
        metavar="FILE|NAME",
        help="a profile or model file, or an embedded profile's name (see `qemu-errata profiles`)",
    )
    sub.add_argument("--json", action="store_true", help="print show/1 JSON")
    sub.set_defaults(run=_show)
    sub = add_command(commands, "profiles")
    sub.add_argument("--json", action="store_true", help="print profiles/1 JSON")
    sub.add_argument(
        "--export",
        metavar="NAME",
        help="write the embedded profile NAME to the file given by -o, to edit or probe against",
    )
    sub.add_argument("-o", "--output", type=Path, metavar="FILE", help="where --export writes")
    sub.set_defaults(run=_profiles)


def _show(args: argparse.Namespace) -> int:
    document = read_document_argument(args.document)
    catalogue = load_catalogue()
    if args.json:
        print(json.dumps(show_json(document, catalogue), indent=2))
    elif isinstance(document, HostProfile):
        print("\n".join(profile_lines(document, catalogue)))
    else:
        print("\n".join(model_lines(document, catalogue)))
    return ExitStatus.OK


def _profiles(args: argparse.Namespace) -> int:
    if args.export is not None:
        return _export(args.export, args.output, args.json)
    if args.output is not None:
        raise InputError("profiles -o: only with --export NAME (the profile to write)")
    profiles = {name: load_embedded_profile(name) for name in embedded_profile_names()}
    if args.json:
        print(json.dumps(profiles_json(profiles), indent=2))
    else:
        print("\n".join(profiles_lines(profiles)))
    return ExitStatus.OK


def _export(name: str, output: Path | None, as_json: bool) -> int:
    if output is None:
        raise InputError(f"profiles --export {name}: needs -o FILE, the file to write")
    if as_json:
        raise InputError("profiles --export: writes the profile itself; --json is for the list")
    profile = load_embedded_profile(name)
    write_json(output, profile.to_json())
    print(f"Wrote embedded profile {name} to {output}.")
    return ExitStatus.OK
