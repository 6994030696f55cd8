"""Reading the documents named on the command line: files, or embedded profiles by name."""

from __future__ import annotations

from pathlib import Path

from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.pool import MODEL_FORMAT, PoolModel, model_from_json
from qemu_errata.core.profile import PROFILE_FORMAT, HostProfile, profile_from_json
from qemu_errata.errors import InputError
from qemu_errata.files import read_json, read_profile


def read_profile_argument(argument: Path) -> HostProfile:
    """A profile file, or a shipped profile named like ``kvm-6.12-neoverse-n1``."""
    if _names_embedded(argument):
        return load_embedded_profile(str(argument))
    return read_profile(argument)


def read_document_argument(argument: Path) -> HostProfile | PoolModel:
    """A profile or a pool model, told apart by its ``format`` key; or an embedded profile."""
    if _names_embedded(argument):
        return load_embedded_profile(str(argument))
    data = read_json(argument)
    kind = data.get("format") if isinstance(data, dict) else None
    if kind == MODEL_FORMAT:
        return model_from_json(data, str(argument))
    if kind == PROFILE_FORMAT:
        return profile_from_json(data, str(argument))
    raise InputError(
        f"{argument}: format {kind!r} is neither {PROFILE_FORMAT!r} nor {MODEL_FORMAT!r}"
    )


def _names_embedded(argument: Path) -> bool:
    """A bare name (no directory) that is no file here but a shipped profile's name."""
    text = str(argument)
    return "/" not in text and not argument.exists() and text in embedded_profile_names()
