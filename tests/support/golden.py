"""Golden outputs: expected text kept as files in tests/golden, rewritten by one command.

``assert_golden(name, actual)`` compares ``actual`` with tests/golden/NAME; with
QEMU_ERRATA_WRITE_GOLDEN=1 in the environment it writes ``actual`` there instead,
which is what ``scripts/golden`` does (then read ``git diff tests/golden``: every
change is a change of what users see).
"""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
WRITE = os.environ.get("QEMU_ERRATA_WRITE_GOLDEN") == "1"


def read_golden(name: str) -> str:
    """The golden file's text."""
    return (GOLDEN / name).read_text("utf-8")


def golden_lines(name: str) -> list[str]:
    """The golden file's lines (a file of one argument per line, say)."""
    return read_golden(name).splitlines()


def assert_golden(name: str, actual: str) -> None:
    """``actual`` is the golden file's text (or becomes it, under scripts/golden)."""
    text = actual if actual.endswith("\n") else actual + "\n"
    if WRITE:
        (GOLDEN / name).write_text(text, "utf-8")
        return
    assert text == read_golden(name), f"{name}: differs from tests/golden (scripts/golden)"
