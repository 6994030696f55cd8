"""Arguments several commands share: documents (files or embedded profiles), time, kernels."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.pool import MODEL_FORMAT, PoolModel, model_from_json
from qemu_errata.core.profile import PROFILE_FORMAT, HostProfile, profile_from_json
from qemu_errata.core.vmms import load_vmm_table
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


def add_timeout_option(parser: argparse.ArgumentParser, default: float, what: str) -> None:
    """``--timeout SECONDS``: how long ``what`` may take (checked by positive_timeout)."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=default,
        metavar="SECONDS",
        help=f"{what} (default {default:g})",
    )


def positive_timeout(seconds: float) -> float:
    """``seconds`` if it is a time bound at all; InputError otherwise."""
    if not seconds > 0:
        raise InputError(f"--timeout {seconds:g}: not a positive number of seconds")
    return seconds


def running_kernel() -> Path:
    """This host's own kernel Image: the default guest kernel."""
    return Path(f"/boot/vmlinuz-{os.uname().release}")


def add_vmm_option(parser: argparse.ArgumentParser) -> None:
    """``--vmm NAME``: whose capabilities decide (deciding_vmm reads it)."""
    names = ", ".join(vmm.name for vmm in load_vmm_table())
    parser.add_argument(
        "--vmm",
        metavar="NAME",
        help=f"the VMM whose capabilities decide ({names}; default: the arm64 QEMU of this "
        "machine, else the newest known)",
    )
