"""The ``kvm-validate`` command: this host's KVM judges whether it can present pool models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qemu_errata.commands import Subcommands
from qemu_errata.errors import ExitStatus
from qemu_errata.files import read_model
from qemu_errata.probe.validate import ModelValidation, validate_models

VALIDATION_FORMAT = "qemu-errata/kvm-validation/1"


def register(commands: Subcommands) -> None:
    """Register ``kvm-validate`` on the ``qemu-errata`` subcommands."""
    sub = commands.add_parser(
        "kvm-validate", help="let this host's KVM judge whether it can present pool models"
    )
    sub.add_argument("models", nargs="+", type=Path, metavar="MODEL")
    sub.add_argument("--json", action="store_true", help="print every register verdict as JSON")
    sub.add_argument(
        "--run",
        action="store_true",
        dest="run_guest",
        help="then run a guest that reads the ID registers with MRS: does it see the model?",
    )
    sub.set_defaults(run=run_kvm_validate)


def run_kvm_validate(args: argparse.Namespace) -> int:
    models = [(str(path), read_model(path)) for path in args.models]
    validations = validate_models(models, run=args.run_guest)
    if args.json:
        document = {"format": VALIDATION_FORMAT, "models": [v.to_json() for v in validations]}
        print(json.dumps(document, indent=2))
    else:
        for validation in validations:
            print(_describe(validation))
    return ExitStatus.OK if all(v.accepted for v in validations) else ExitStatus.NO


def _describe(validation: ModelValidation) -> str:
    verdict = "accepts" if validation.accepted else "refuses"
    lines = [
        f"{validation.model}: KVM (Linux {validation.kernel}) {verdict} it: "
        f"{len(validation.verdicts) - len(validation.refused)} of "
        f"{len(validation.verdicts)} registers written"
    ]
    if validation.guest_error is not None:
        lines.append(
            f"  guest: read {validation.guest_reads} ID registers with MRS"
            + (f", then {validation.guest_error}" if validation.guest_error else "")
        )
    for refused in validation.refused:
        host = "not offered" if refused.host is None else f"{refused.host:#x}"
        lines.append(
            f"  {refused.register}: {refused.value:#x} refused ({refused.reason}); host {host}"
        )
    return "\n".join(lines)
