"""JSON files in the user's cache directory, $XDG_CACHE_HOME/qemu-errata (~/.cache/qemu-errata;
safe to delete), that only ever save time (shell).

A file is written atomically (a temporary file renamed), so concurrent commands never read
half of one, and is read only when no other user could have written it or its directory:
root runs the command line and the libvirt hook, and a planted file would change their
decisions. Any failure to read or write one is no file at all. Standard library only and
cheap to import: the hook imports this (through qemu_errata/table_copies.py).
"""

from __future__ import annotations

import contextlib
import json
import os

TYPE_CHECKING = False  # typing costs --version's start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def directory(kind: str) -> str:
    """$XDG_CACHE_HOME/qemu-errata/``kind``, ~/.cache/qemu-errata/``kind`` without it."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "qemu-errata", kind)


def read_json(folder: str, name: str) -> Any:
    """The document in file ``name`` of ``folder``; None when there is none, it is not JSON,
    or another user could have written it."""
    try:
        descriptor = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(descriptor, encoding="utf-8") as stream:
            if not (_ours(os.fstat(descriptor)) and _ours(os.stat(folder))):
                return None
            return json.load(stream)
    except (OSError, ValueError):
        return None


def write_json(folder: str, name: str, document: Any) -> bool:
    """Write ``document`` as file ``name`` of ``folder``, whole or not at all; whether it was
    written (a read-only or missing cache directory just means no file)."""
    path = os.path.join(folder, name)
    temporary = f"{path}.{os.getpid()}.tmp"  # tempfile would cost the hook's start-up
    try:
        os.makedirs(folder, 0o755, exist_ok=True)  # read_json() refuses group-write
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError:
        return False
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(document, stream)
        os.replace(temporary, path)
    except (OSError, TypeError, ValueError):
        return False
    finally:  # renamed, it is gone; after an error or Ctrl-C it would be left
        with contextlib.suppress(OSError):
            os.unlink(temporary)
    return True


def remove_others(folder: str, kept: str, replaced: Callable[[str], bool]) -> None:
    """Remove the files of ``folder`` other than ``kept`` that ``replaced`` says ``kept``
    supersedes (older versions of what it holds: without this they pile up)."""
    with contextlib.suppress(OSError):
        for entry in os.listdir(folder):
            if entry != kept and replaced(entry):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, entry))


def _ours(status: os.stat_result) -> bool:
    """Whether no other user could have written this file or directory."""
    return status.st_uid in (0, os.geteuid()) and not status.st_mode & 0o022
