"""Arguments several commands share: documents (files or embedded profiles), time, kernels."""

from __future__ import annotations

import argparse
import os

from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.errata import load_errata_table
from qemu_errata.core.errata.hazards import hazard_names
from qemu_errata.core.pool import MODEL_FORMAT, PoolModel, model_from_json
from qemu_errata.core.profile import PROFILE_FORMAT, HostProfile, profile_from_json
from qemu_errata.core.vmms import load_vmm_table
from qemu_errata.errors import InputError
from qemu_errata.files import read_json, read_profile

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from pathlib import Path

    from qemu_errata.files import FilePath


class InputFile(str):
    """A command-line argument naming a file the command reads (``nested`` sees that it
    exists before it boots, as it does for a Path): a string, for a command whose start-up
    pathlib would cost its import (``check``)."""

    __slots__ = ()


def read_profile_argument(argument: FilePath) -> HostProfile:
    """A profile file, or a shipped profile named like ``kvm-6.12-neoverse-n1``."""
    if _names_embedded(argument):
        return load_embedded_profile(os.fspath(argument))
    _refuse_mistyped_name(argument)
    return read_profile(argument)


def read_document_argument(argument: FilePath) -> HostProfile | PoolModel:
    """A profile or a pool model, told apart by its ``format`` key; or an embedded profile."""
    if _names_embedded(argument):
        return load_embedded_profile(os.fspath(argument))
    _refuse_mistyped_name(argument)
    data = read_json(argument)
    kind = data.get("format") if isinstance(data, dict) else None
    if kind == MODEL_FORMAT:
        return model_from_json(data, os.fspath(argument))
    if kind == PROFILE_FORMAT:
        return profile_from_json(data, os.fspath(argument))
    raise InputError(
        f"{argument}: format {kind!r} is neither {PROFILE_FORMAT!r} nor {MODEL_FORMAT!r}"
    )


def _names_embedded(argument: FilePath) -> bool:
    """A bare name (no directory) that is no file here but a shipped profile's name."""
    text = os.fspath(argument)
    return "/" not in text and not os.path.exists(text) and text in embedded_profile_names()


def _refuse_mistyped_name(argument: FilePath) -> None:
    """A bare name that is no file here but close to a shipped profile's name: say which."""
    text = os.fspath(argument)
    if "/" in text or os.path.exists(text):
        return
    import difflib  # noqa: PLC0415 (start-up: only for a name that is no file)

    close = difflib.get_close_matches(text, embedded_profile_names(), n=1, cutoff=0.8)
    if close:
        raise InputError(
            f"{text}: no such file, nor an embedded profile (did you mean {close[0]}? "
            "`qemu-errata profiles` lists them)"
        )


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


def running_kernel(command: str) -> Path:
    """This host's own kernel Image: the default guest kernel of ``command``.

    On a machine that is not arm64 there is none to boot (nor an arm64 KVM): InputError
    pointing to ``nested``, whose host boots its own kernel as the guest.
    """
    machine = os.uname().machine
    if machine != "aarch64":
        raise InputError(
            f"{command}: this is an {machine} machine, with neither an arm64 kernel to boot nor "
            f"an arm64 KVM: `qemu-errata nested --cpu MODEL -- {command} ...` runs it on a "
            "nested arm64 KVM host, whose own kernel is the guest"
        )
    from pathlib import Path  # noqa: PLC0415 (start-up: commands that boot a kernel only)

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


def add_accept_option(parser: argparse.ArgumentParser) -> None:
    """``--accept-lost-mitigation NAME`` (repeatable; accepted_names reads it)."""
    parser.add_argument(
        "--accept-lost-mitigation",
        action="append",
        default=[],
        metavar="NAME",
        help="accept that the pool's guests skip this mitigation (or erratum workaround) on "
        "hosts that need it, by the name `errata` gives it (e.g. Spectre-BHB); repeatable; "
        "recorded in the model",
    )


def accepted_names(args: argparse.Namespace) -> tuple[str, ...]:
    """The names given to --accept-lost-mitigation, as the errata table spells them;
    InputError for a name no guest kernel known has."""
    if not args.accept_lost_mitigation:
        return ()  # the names come from every known release's table: not loaded for none
    known = {name.casefold(): name for name in hazard_names()}
    accepted = []
    for name in args.accept_lost_mitigation:
        spelled = known.get(name.casefold())
        if spelled is None:
            mitigations = ", ".join(sorted({m.id for m in load_errata_table().mitigations}))
            raise InputError(
                f"--accept-lost-mitigation {name}: no mitigation or erratum of that name "
                f"(mitigations: {mitigations}; errata by the ids `errata` prints)"
            )
        accepted.append(spelled)
    return tuple(dict.fromkeys(accepted))
