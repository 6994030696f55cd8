"""Every argument of every command says what it is in ``--help`` (and so in the man page), and
the README's table of commands names every option."""

from __future__ import annotations

import argparse

import pytest
from support.checkout import CHECKOUT

from qemu_errata.commands import COMMANDS, command_parser


def _unexplained(parser: argparse.ArgumentParser) -> list[str]:
    return [
        "/".join(action.option_strings) or action.dest
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_argument_has_a_help_text(name: str) -> None:
    assert _unexplained(command_parser(name)) == []


def test_check_help_explains_its_positional_arguments() -> None:
    text = " ".join(command_parser("check").format_help().split())
    assert "MODEL the pool model (from baseline -o)" in text
    assert "PROFILE the host's profile (a file, or an embedded profile's name)" in text


def _readme_rows() -> dict[str, str]:
    """The usage cell of each command's row(s) in the README's table of commands."""
    rows: dict[str, str] = {}
    for line in (CHECKOUT / "README.md").read_text().splitlines():
        if line.startswith("| `") and "` |" in line:
            usage = line[3:].split("` |")[0]
            name = usage.split()[0]
            rows[name] = rows.get(name, "") + " " + usage
    return rows


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_readme_table_names_every_option_of_every_command(name: str) -> None:
    usage = _readme_rows().get(name, "")
    options = {
        option
        for action in command_parser(name)._actions
        for option in action.option_strings
        if option.startswith("--") and option not in ("--help", "--output")
    }
    assert usage, f"no row for {name}"
    assert sorted(o for o in options if o not in usage) == []
