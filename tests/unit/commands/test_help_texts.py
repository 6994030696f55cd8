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


def test_render_help_says_who_decides_without_vmm_only_where_vmm_may_be_left_out() -> None:
    """render needs --vmm unless --domain gives the type: only a kvm domain leaves the VMM
    to this machine's QEMU (vmm.discovery.deciding_vmm with no name)."""
    text = " ".join(command_parser("render").format_help().split())
    assert "qemu-kvm without --vmm" not in text
    assert (
        "(default: the --domain's type: qemu-tcg for type qemu; for type kvm, qemu-kvm with "
        "what the arm64 QEMU of this machine can set, else the newest known VMM; required "
        "without --domain)"
    ) in text
