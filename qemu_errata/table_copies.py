"""Parsed copies of the package's TOML tables, kept as JSON in the user's cache (shell).

Parsing and checking a table takes a short command much of its run (``check``:
bench/cli_startup.py); the same document read back from JSON takes about a
millisecond. A copy in $XDG_CACHE_HOME/qemu-errata/tables
(~/.cache/qemu-errata/tables; safe to delete) is named by the table's name,
its installation (the data directory's device and inode) and its size and
modification time, so an edited or upgraded table is parsed anew (and a hit
reads no table at all). It is written and read as qemu_errata/user_cache.py
writes and reads its files: atomically, and never one that another user could
have written. A new copy replaces the copies of
its installation's older tables only: two installations under one user (a
venv beside a system package) each keep theirs instead of removing the
other's on every run. Any failure to read or write a
copy falls back to parsing: the copies only ever save time. Entry points
install them (``install``): the command line, and the hook when it names CPUs.
Standard library only: the hook imports this.
"""

from __future__ import annotations

import os

from qemu_errata import user_cache
from qemu_errata.core import data_files

TYPE_CHECKING = False  # typing costs --version's start-up
if TYPE_CHECKING:
    from typing import Any


class JsonCopies:
    """Copies in ``directory``, one file per version of a table."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._copies: dict[str, str] = {}  # by table: its copy's file name when get() looked
        self._installation = ""  # the data directory's "DEVICE-INODE", once get() needed it

    def get(self, name: str) -> dict[str, Any] | None:
        """The copy of table ``name``'s current version; None (parse the table) when there
        is none, it is damaged, or another user could have written it."""
        try:
            table = os.stat(os.path.join(data_files.DATA_DIRECTORY, name))
            if not self._installation:
                data = os.stat(data_files.DATA_DIRECTORY)
                self._installation = f"{data.st_dev}-{data.st_ino}"
        except OSError:
            return None  # the core reports the missing table
        base = name.removesuffix(".toml")
        copy = _copy_name(base, self._installation, table.st_size, table.st_mtime_ns)
        self._copies[name] = copy
        document = user_cache.read_json(self.directory, copy)
        return document if isinstance(document, dict) else None

    def put(self, name: str, document: dict[str, Any]) -> None:
        """Write the copy get() looked for, and remove the copies of this installation's
        other versions of table ``name`` (each upgrade or reinstall makes a new one)."""
        copy = self._copies.get(name)
        if copy is None or not user_cache.write_json(self.directory, copy, document):
            return
        base = name.removesuffix(".toml")
        user_cache.remove_others(
            self.directory, copy, lambda entry: _is_copy_of(base, self._installation, entry)
        )


def _copy_name(base: str, installation: str, size: int, mtime_ns: int) -> str:
    """The file name of the copy of table ``base`` (its name without ``.toml``) of this
    installation, size and modification time: the one spelling, which get() names and
    put() (through _is_copy_of) finds the older ones by."""
    return f"{base}-{installation}-{size}-{mtime_ns}.json"


def _is_copy_of(base: str, installation: str, entry: str) -> bool:
    """Whether ``entry`` is _copy_name() of some version of this installation's table
    ``base`` (not of ``<base>-effects``, not another installation's), or a copy named as
    0.3.0 named them (``<base>-SIZE-TIME.json``, no installation): its last two runs of
    digits are that version's size and time."""
    runs = "".join(c if c in "0123456789" else " " for c in entry).split()
    if len(runs) < 2:
        return False
    size, mtime_ns = int(runs[-2]), int(runs[-1])
    named_before = f"{base}-{size}-{mtime_ns}.json"
    return entry in (_copy_name(base, installation, size, mtime_ns), named_before)


def cache_directory() -> str:
    """$XDG_CACHE_HOME/qemu-errata/tables, ~/.cache/qemu-errata/tables without it."""
    return user_cache.directory("tables")


def install() -> None:
    """Read the package's TOML tables through copies in cache_directory() from now on."""
    data_files.use_copies(JsonCopies(cache_directory()))
