"""The ``qemu-errata`` command line: one parser, every command module registers itself.

The exit status is decided here and nowhere else: a command returns one of
``ExitStatus``; an error raised on purpose carries its own (see errors.py);
anything else is an internal error, one line, status 3 (``--debug`` shows the
traceback). A closed output pipe is not an error of ours.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from qemu_errata import __version__
from qemu_errata.commands import (
    demo,
    errata,
    guest_view,
    hook,
    kvm_validate,
    nested,
    plan,
    pool,
    probe,
    show,
    vmm,
)
from qemu_errata.errors import QemuErrataError

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qemu-errata",
        description="Safe live migration of arm64 KVM guests across different hosts.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.add_argument("--version", action="version", version=f"qemu-errata {__version__}")
    for module in (
        pool,
        errata,
        plan,
        show,
        vmm,
        nested,
        hook,
        probe,
        demo,
        kvm_validate,
        guest_view,
    ):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Command = args.run
    try:
        return run(args)
    except QemuErrataError as error:
        print(f"qemu-errata: {error}", file=sys.stderr)
        return error.exit_status
