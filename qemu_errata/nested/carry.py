"""Which files of a command line go into the nested host and which come back out.

``qemu-errata nested --cpu MODEL -- ARGS`` runs ``qemu-errata ARGS`` inside,
where the outer machine's files do not exist. Every argument after the
subcommand that names an existing file or directory (also as ``--opt=PATH``)
is carried in, under ``/qemu-errata/in/<n>/<its name>``; the value of ``-o``
or ``--output`` is written inside to ``/qemu-errata/out/<n>/<its name>`` and
carried back out to the path given. The arguments are rewritten to the
inside paths, and the inside paths in the command's output are written back
as the arguments given, byte for byte (output that is not UTF-8 too), so messages
name the files as the user wrote them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qemu_errata.errors import InputError

IN_DIRECTORY = "/qemu-errata/in"
OUT_DIRECTORY = "/qemu-errata/out"
OUTPUT_OPTIONS = ("-o", "--output")
# The nested host keeps everything in memory: refuse what would not fit.
MAX_INPUT_BYTES = 64 << 20


@dataclass
class Transfer:
    """The rewritten arguments and the files to carry, by path inside the nested host."""

    argv: list[str] = field(default_factory=list)
    inputs: dict[str, Path] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)
    given: dict[str, str] = field(default_factory=dict)  # inside path: the argument as written

    def outside_names(self, output: bytes) -> bytes:
        """The command's ``output`` with every inside path replaced by the argument given."""
        # surrogateescape: bytes that are not UTF-8 (and such file names) pass through as they are
        text = output.decode("utf-8", "surrogateescape")
        for inside, argument in self.given.items():
            text = text.replace(inside, argument)
        return text.encode("utf-8", "surrogateescape")


def plan_transfer(argv: Sequence[str]) -> Transfer:
    """Decide what to carry for ``qemu-errata ARGV`` run inside; InputError on bad paths."""
    transfer = Transfer(argv=list(argv[:1]))
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument in OUTPUT_OPTIONS:
            value = next(arguments, None)
            transfer.argv.append(argument)
            if value is not None:
                transfer.argv.append(_output(transfer, argument, value))
        elif argument.startswith("--") and "=" in argument:
            option, value = argument.split("=", 1)
            if option in OUTPUT_OPTIONS:
                value = _output(transfer, option, value)
            else:
                value = _input(transfer, value)
            transfer.argv.append(f"{option}={value}")
        elif argument.startswith("-o") and len(argument) > 2:
            transfer.argv.append("-o" + _output(transfer, "-o", argument[2:]))
        elif argument.startswith("-"):
            transfer.argv.append(argument)
        else:
            transfer.argv.append(_input(transfer, argument))
    size = sum(_size(path) for path in transfer.inputs.values())
    if size > MAX_INPUT_BYTES:
        raise InputError(
            f"input files: {size} bytes, more than the nested host takes ({MAX_INPUT_BYTES})"
        )
    return transfer


def _input(transfer: Transfer, value: str) -> str:
    path = Path(value)
    if not (path.is_file() or path.is_dir()):
        return value
    inside = f"{IN_DIRECTORY}/{len(transfer.inputs)}/{path.resolve().name or 'root'}"
    transfer.inputs[inside] = path
    transfer.given[inside] = value
    return inside


def _output(transfer: Transfer, option: str, value: str) -> str:
    path = Path(value)
    if not path.name or path.is_dir():
        raise InputError(f"{option} {value}: not a file name")
    if not path.resolve().parent.is_dir():
        raise InputError(f"{option} {value}: directory {path.parent} does not exist")
    inside = f"{OUT_DIRECTORY}/{len(transfer.outputs)}/{path.name}"
    transfer.outputs[inside] = path
    transfer.given[inside] = value
    return inside


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(
        (Path(directory) / name).lstat().st_size
        for directory, _, names in os.walk(path)
        for name in names
    )
