"""Completion and man page: generated from the argument parser by shtab and argparse-manpage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.checkout import CHECKOUT

from qemu_errata.commands import COMMANDS


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    subprocess.run([CHECKOUT / "scripts/shell-files", sys.prefix, root], check=True, timeout=120)
    return root


def _bash_completes(root: Path, *words: str) -> list[str]:
    """What bash offers after ``words`` (the last one being completed), as a user would get."""
    script = (
        f"source {root}/usr/share/bash-completion/completions/qemu-errata\n"
        'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))\n'
        "_shtab_qemu_errata\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "-c", script, "bash", "qemu-errata", *words],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def test_bash_completes_commands_and_their_options(root: Path) -> None:
    assert _bash_completes(root, "pro") == ["profiles", "probe"]
    assert set(_bash_completes(root, "")) >= set(COMMANDS)
    assert "--export" in _bash_completes(root, "profiles", "--")
    assert "--json" in _bash_completes(root, "show", "--")


def test_zsh_completion_is_a_compdef_of_every_command(root: Path) -> None:
    text = (root / "usr/share/zsh/vendor-completions/_qemu-errata").read_text()
    assert text.startswith("#compdef qemu-errata\n")
    for name in COMMANDS:
        assert f"\n    {name}:'" in text, name


def test_the_man_page_names_every_command(root: Path) -> None:
    page = root / "usr/share/man/man1/qemu-errata.1"
    shown = subprocess.run(
        ["man", "--local-file", page],
        capture_output=True,
        text=True,
        check=True,
        env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert shown.startswith("QEMU-ERRATA(1)")
    for name in COMMANDS:
        assert f"qemu-errata {name}\n" in shown, name
