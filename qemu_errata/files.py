"""Reading the tool's JSON files and writing files atomically (shell: does I/O).

Writes are atomic (``write_atomically``: a temporary file in the same
directory, then a rename), so a failure never leaves a half-written profile,
model or hook script behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.pool import MODEL_FORMAT, PoolModel, model_from_json
from qemu_errata.core.profile import HostProfile, profile_from_json
from qemu_errata.errors import InputError


def read_bytes(path: Path) -> bytes:
    """The bytes of ``path``; InputError naming the file otherwise."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None


def read_json(path: Path) -> Any:
    """The decoded JSON of ``path``; InputError naming the file otherwise."""
    try:
        text = path.read_text("utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(
            f"{path}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically; InputError naming the file otherwise."""
    content = (json.dumps(data, indent=2) + "\n").encode("utf-8")
    try:
        write_atomically(path, content)
    except OSError as error:
        raise InputError(f"{path}: cannot write: {error.strerror}") from None


def write_atomically(path: Path, content: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` by a file of ``content`` and ``mode``; OSError if that fails.

    The content goes to a temporary file beside ``path`` (created 0600, so not
    executable: a hook directory never runs it), gets its mode, and is renamed
    over ``path``: readers see the old file or the whole new one, never a
    partial or wrong-mode file. On any failure the temporary file is removed.
    """
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
            os.fchmod(stream.fileno(), mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def read_profile(path: Path) -> HostProfile:
    return profile_from_json(read_json(path), str(path))


def read_model(path: Path) -> PoolModel:
    return model_from_json(read_json(path), str(path))


def read_model_or_profile(name: str) -> PoolModel | HostProfile:
    """A pool model or host profile file (told apart by format), or an embedded profile's name."""
    path = Path(name)
    if not path.exists() and name in embedded_profile_names():
        return load_embedded_profile(name)
    data = read_json(path)
    if isinstance(data, dict) and data.get("format") == MODEL_FORMAT:
        return model_from_json(data, str(path))
    return profile_from_json(data, str(path))
