"""The ``kvm-validate`` command: this host's KVM judges whether it can present pool models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.errors import ExitStatus
from qemu_errata.files import read_model
from qemu_errata.probe.validate import validate_models
from qemu_errata.reports.kvm_validation import describe_validations, validation_json


def register(commands: Subcommands) -> None:
    """Register ``kvm-validate`` on the ``qemu-errata`` subcommands."""
    sub = add_command(commands, "kvm-validate")
    sub.add_argument(
        "models", nargs="+", type=Path, metavar="MODEL", help="pool models to write to this KVM"
    )
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
        print(json.dumps(validation_json(validations), indent=2))
    else:
        print(describe_validations(validations))
    return ExitStatus.OK if all(v.accepted for v in validations) else ExitStatus.NO
