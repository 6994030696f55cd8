"""The command imports only the module of the command it runs (start-up time)."""

from __future__ import annotations

import subprocess
import sys

from qemu_errata.commands import COMMANDS
from qemu_errata.commands.main import build_parser

# Which command modules a run of qemu-errata with ``sys.argv[1:]`` imported, one per line.
IMPORTED = """
import sys
from qemu_errata.commands.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
for name in sorted(sys.modules):
    if name.startswith("qemu_errata.commands."):
        print("imported", name.removeprefix("qemu_errata.commands."), file=sys.stderr)
"""


def imported_modules(*argv: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-I", "-c", IMPORTED, *argv], capture_output=True, text=True, check=True
    )
    lines = (line.split() for line in done.stderr.splitlines())
    return {words[1] for words in lines if words[:1] == ["imported"]}


def test_version_and_help_import_no_command_module() -> None:
    assert imported_modules("--version") == {"main"}
    assert imported_modules("--help") == {"main"}


def test_a_command_imports_its_own_module_only() -> None:
    # arguments: the helpers commands share to read their inputs.
    assert imported_modules("check", "no-model.json", "no-profile.json") == {
        "main",
        "pool",
        "arguments",
    }


def test_the_table_lists_every_command_in_the_order_help_shows() -> None:
    full = build_parser()
    (subcommands,) = [a for a in full._actions if a.dest == "command"]
    assert list(subcommands.choices or {}) == list(COMMANDS)
    helps = {action.dest: action.help for action in subcommands._choices_actions}
    assert helps == {name: help_text for name, (_, help_text) in COMMANDS.items()}
