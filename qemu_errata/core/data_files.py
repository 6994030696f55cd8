"""The package's data files, as the core reads them: their text, and TOML parsed.

The core only reads the package's own files and parses text; it keeps nothing
anywhere. Parsing a TOML table and holding it to its shape (core/tables.py)
costs a short command much of its run (``check``: bench/cli_startup.py), so the
shell may hand the core a store of copies (``use_copies``;
qemu_errata/table_copies.py keeps them as JSON in the user's cache directory):
``package_toml`` asks it first, and gives it each table it parsed and held to
its shape, so a copy is a checked table and is not checked again. Without a
store, every process parses and checks. Paths rather than importlib.resources:
its import costs a short command more than the lookup (the package is installed
as files).
"""

from __future__ import annotations

import os

from qemu_errata.core import tables
from qemu_errata.errors import CatalogueError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Copies(Protocol):
        """Checked copies of the package's tables, by name (the shell's store)."""

        def get(self, name: str) -> dict[str, Any] | None: ...

        def put(self, name: str, document: dict[str, Any]) -> None: ...


DATA_DIRECTORY = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")
_copies: Copies | None = None


def use_copies(copies: Copies | None) -> None:
    """Read the package's TOML tables through ``copies`` from now on (None: parse them)."""
    global _copies  # noqa: PLW0603 (the one store of a process, installed by its entry point)
    _copies = copies


def read_package_text(name: str) -> str:
    """The text of ``data/<name>`` of the package."""
    with open(os.path.join(DATA_DIRECTORY, name), encoding="utf-8") as stream:
        return stream.read()


def package_toml(name: str, shape: tables.Row | None) -> dict[str, Any]:
    """The parsed ``data/<name>`` of the package, held to ``shape`` (CatalogueError naming
    the file, the row and the key). Only checked tables become copies: without a shape
    (a glance at one register's layout), a copy serves when there is one, none is made."""
    copy = _copies.get(name) if _copies is not None else None
    if copy is not None:
        return copy
    text = read_package_text(name)
    if shape is None:
        return parse_toml(text, name)
    document = parse_table(text, name, shape)
    if _copies is not None:
        _copies.put(name, document)
    return document


def parse_table(text: str, origin: str, shape: tables.Row) -> dict[str, Any]:
    """``text`` parsed and held to ``shape``; CatalogueError naming ``origin``, row and key."""
    document = parse_toml(text, origin)
    tables.check(document, shape, origin)
    return document


def parse_toml(text: str, origin: str) -> dict[str, Any]:
    """``text`` parsed; CatalogueError naming ``origin`` when it is not TOML."""
    import tomllib  # noqa: PLC0415 - only when no copy is at hand (start-up)

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{origin}: not valid TOML: {error}") from None
