"""The package's data files; its TOML ones parsed once per content (a JSON copy in the cache).

tomllib takes about 70 ms for registers.toml and errata.toml together, most
of a short command's run (``check``: bench/cli_startup.py); the same document
read back from JSON takes about 1 ms. The copy in $XDG_CACHE_HOME/qemu-errata
is named by the table's name, size and CRC-32, so an edited or upgraded table
is parsed anew, and written atomically (a temporary file renamed), so
concurrent commands never read half of one. Any failure to read or write the
copy falls back to parsing: the cache only ever saves time. Only the
package's own files go through it, never text a caller passes (the loaders'
parse functions take that). Paths rather than importlib.resources, and zlib
rather than hashlib: their imports cost a short command more than the lookup
(the package is installed as files).
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from typing import Any

from qemu_errata.errors import CatalogueError

DATA_DIRECTORY = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")


def read_package_text(name: str) -> str:
    """The text of ``data/<name>`` of the package."""
    with open(os.path.join(DATA_DIRECTORY, name), encoding="utf-8") as stream:
        return stream.read()


def read_package_toml(name: str) -> dict[str, Any]:
    """The parsed ``data/<name>`` of the package (CatalogueError if it is not TOML)."""
    text = read_package_text(name)
    path = _cache_path(name, text)
    try:
        with open(path, encoding="utf-8") as stream:
            cached: dict[str, Any] = json.load(stream)
            return cached
    except (OSError, ValueError):
        pass
    document = parse_toml(text, name)
    _store(path, document)
    return document


def parse_toml(text: str, origin: str) -> dict[str, Any]:
    """``text`` parsed; CatalogueError naming ``origin`` when it is not TOML."""
    import tomllib  # noqa: PLC0415 - only when the copy is missing (start-up)

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{origin}: not valid TOML: {error}") from None


def _cache_path(name: str, text: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    data = text.encode("utf-8")
    stem = f"{name.removesuffix('.toml')}-{len(data)}-{zlib.crc32(data):08x}"
    return os.path.join(base, "qemu-errata", "tables", f"{stem}.json")


def _store(path: str, document: dict[str, Any]) -> None:
    """Write the copy; a read-only or missing HOME just means no cache."""
    temporary = f"{path}.{os.getpid()}.tmp"  # tempfile would cost the hook's start-up
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:
        return
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(document, stream)
        os.replace(temporary, path)
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(temporary)
