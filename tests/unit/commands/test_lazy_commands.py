"""The command imports only the module of the command it runs (start-up time)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from qemu_errata.commands import COMMANDS
from qemu_errata.commands.main import build_parser
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import baseline
from qemu_errata.files import write_json

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
    assert isinstance(subcommands, argparse._SubParsersAction)
    helps = {action.dest: action.help for action in subcommands._choices_actions}
    assert helps == {name: help_text for name, (_, help_text) in COMMANDS.items()}


STANDARD = """
import sys
from qemu_errata.commands.main import main
main(sys.argv[1:])
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""


def test_check_parses_no_table_once_copies_are_kept_and_starts_no_process_machinery(
    tmp_path: Path,
) -> None:
    """tomllib and the tables' checks run once per table version (table_copies); asyncio,
    ctypes, subprocess and mmap belong to commands that start or read a QEMU, not to one
    that reads two files; typing to type checkers; pathlib (with urllib.parse and
    ipaddress) where os.path does; difflib to a misspelt register's suggestion; dataclasses
    (with inspect, ast and tokenize) to other commands' classes: core's are records."""
    profile = load_embedded_profile("kvm-6.12-neoverse-n1")
    write_json(tmp_path / "model.json", baseline([profile]).to_json())
    write_json(tmp_path / "profile.json", profile.to_json())
    command = [sys.executable, "-I", "-c", STANDARD, "check"]
    command += [str(tmp_path / "model.json"), str(tmp_path / "profile.json")]
    environment = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    modules = []
    for _ in range(2):
        done = subprocess.run(command, capture_output=True, text=True, env=environment, check=True)
        modules.append(set(done.stderr.split()))
    assert "tomllib" in modules[0]
    absent = {"tomllib", "asyncio", "ctypes", "subprocess", "typing", "mmap", "pathlib", "difflib"}
    absent |= {"dataclasses", "inspect"}
    assert not absent & modules[1]


TABLES = """
import sys
from qemu_errata.commands.main import main
from qemu_errata.core.errata.table import load_errata_table
status = main(sys.argv[1:])
print(status, load_errata_table.cache_info().currsize, file=sys.stderr)
"""


def test_check_of_one_implementation_resolves_only_the_table_its_cost_needs(
    tmp_path: Path,
) -> None:
    """A guest whose target list holds its own implementation alone, its MIDR not pinned,
    loses no mitigation on any kernel: check resolves no release's table for hazards (one
    per release known), only the newest one, for the errata cost it prints."""
    profile = load_embedded_profile("kvm-6.12-neoverse-n1")
    write_json(tmp_path / "model.json", baseline([profile]).to_json())
    write_json(tmp_path / "profile.json", profile.to_json())
    command = [sys.executable, "-I", "-c", TABLES, "check"]
    command += [str(tmp_path / "model.json"), str(tmp_path / "profile.json")]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    assert done.stderr.split() == ["0", "1"]
