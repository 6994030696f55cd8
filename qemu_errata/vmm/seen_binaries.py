"""What each QEMU binary was found to be, remembered in the user's cache (shell).

Asking a QEMU binary (``--version``, then a search of its tens of megabytes for
property names) costs a command on an arm64 machine more than the rest of its
start-up (bench/vmm_discovery.py). What one binary file says never changes, so
its release and the searched names it carries are kept in
$XDG_CACHE_HOME/qemu-errata/qemu-binaries (~/.cache/qemu-errata/qemu-binaries;
safe to delete), in a file named by the binary's resolved path, device, inode,
size and modification time: an upgraded or rebuilt QEMU is asked anew, and a
hit runs no QEMU and reads no binary. Files are written and read as
qemu_errata/user_cache.py does (atomically; never one another user could have
written), held to their shape when read, and kept only for what this
package searches (a release that searches more names asks again). A new file
replaces those of the same path's older binaries. Any failure falls back to
asking the binary.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from qemu_errata import user_cache
from qemu_errata.core.vmms import SEARCHED_NAMES

FORMAT = "qemu-errata/qemu-binary/1"

Sighting = tuple[tuple[int, int], frozenset[str]]  # (major, minor) release, the names it has


def sighting(path: str | os.PathLike[str], ask: Callable[[], Sighting]) -> Sighting:
    """What the binary at ``path`` was found to be; ``ask``-ed (and remembered) when this
    exact file was not seen before."""
    directory = user_cache.directory("qemu-binaries")
    name = _file_name(path)
    if name is not None:
        remembered = _sighting_of(user_cache.read_json(directory, name))
        if remembered is not None:
            return remembered
    seen = ask()
    if name is not None and _file_name(path) == name:  # not replaced while it was asked
        document = {
            "format": FORMAT,
            "searched": sorted(SEARCHED_NAMES),
            "version": list(seen[0]),
            "offered": sorted(seen[1]),
        }
        if user_cache.write_json(directory, name, document):
            prefix = name.rsplit("-", 4)[0] + "-"  # the escaped path, without its identity
            user_cache.remove_others(directory, name, lambda entry: _is_of(prefix, entry))
    return seen


def _file_name(path: str | os.PathLike[str]) -> str | None:
    """The file naming the binary file at ``path`` now; None if it cannot be looked at."""
    try:
        resolved = os.path.realpath(path)
        status = os.stat(resolved)
    except (OSError, ValueError):
        return None
    escaped = resolved.replace("%", "%25").replace("/", "%2F")  # one name per path
    identity = f"{status.st_dev}-{status.st_ino}-{status.st_size}-{status.st_mtime_ns}"
    return f"{escaped}-{identity}.json"


def _is_of(prefix: str, entry: str) -> bool:
    """Whether ``entry`` names some binary at the path whose escaped form + ``-`` is
    ``prefix``."""
    identity = entry.removeprefix(prefix).removesuffix(".json").split("-")
    return (
        entry.startswith(prefix)
        and entry.endswith(".json")
        and len(identity) == 4  # device, inode, size, modification time
        and all(part.isascii() and part.isdigit() for part in identity)
    )


def _sighting_of(document: object) -> Sighting | None:
    """The sighting a remembered document holds; None unless it has exactly the shape
    sighting() writes, for the names this package searches."""
    if not isinstance(document, dict) or set(document) != {
        "format",
        "searched",
        "version",
        "offered",
    }:
        return None
    version, offered = document["version"], document["offered"]
    if (
        document["format"] != FORMAT
        or document["searched"] != sorted(SEARCHED_NAMES)
        or not isinstance(version, list)
        or len(version) != 2  # major, minor
        or not all(type(part) is int and part >= 0 for part in version)
        or not isinstance(offered, list)
        or not all(isinstance(n, str) and n in SEARCHED_NAMES for n in offered)
        or len(set(offered)) != len(offered)
    ):
        return None
    return (version[0], version[1]), frozenset(offered)
