"""Reading and writing the tool's JSON files (shell: does I/O).

Writes are atomic (a temporary file in the same directory, then a rename), so
a failure never leaves a half-written profile or model behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from qemu_errata.errors import InputError
from qemu_errata.pool import PoolModel, model_from_json
from qemu_errata.profile import HostProfile, profile_from_json


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
    """Write ``data`` as JSON to ``path`` atomically."""
    text = json.dumps(data, indent=2) + "\n"
    directory = path.parent if str(path.parent) else Path(".")
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    except OSError as error:
        raise InputError(f"{path}: cannot write: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def read_profile(path: Path) -> HostProfile:
    return profile_from_json(read_json(path), str(path))


def read_model(path: Path) -> PoolModel:
    return model_from_json(read_json(path), str(path))
