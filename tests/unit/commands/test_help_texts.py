"""Every argument of every command says what it is in ``--help`` (and so in the man page)."""

from __future__ import annotations

import argparse

import pytest

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
