"""The ``kvm-validate`` report (kvm-validation/1): this host's KVM's verdict on each model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qemu_errata.core.words import plural
from qemu_errata.probe.validate import ModelValidation, RegisterVerdict

VALIDATION_FORMAT = "qemu-errata/kvm-validation/1"


def validation_json(validations: Sequence[ModelValidation]) -> dict[str, Any]:
    return {"format": VALIDATION_FORMAT, "models": [model_json(v) for v in validations]}


def model_json(validation: ModelValidation) -> dict[str, Any]:
    """One model: every register verdict (and the guest's error, when a guest ran)."""
    return {
        "model": validation.model,
        "kernel": validation.kernel,
        "accepted": validation.accepted,
        "registers": [_verdict_json(verdict) for verdict in validation.verdicts],
        **({} if validation.guest_error is None else {"guest_error": validation.guest_error}),
    }


def _verdict_json(verdict: RegisterVerdict) -> dict[str, Any]:
    return {
        "register": verdict.register,
        "value": f"{verdict.value:#x}",
        "host": None if verdict.host is None else f"{verdict.host:#x}",
        "accepted": verdict.accepted,
        "reason": verdict.reason,
        "guest": None if verdict.guest is None else verdict.guest.describe(),
    }


def describe_validation(validation: ModelValidation) -> str:
    verdict = "accepts" if validation.accepted else "refuses"
    lines = [
        f"{validation.model}: KVM (Linux {validation.kernel}) {verdict} it: "
        f"{len(validation.verdicts) - len(validation.refused)} of "
        f"{plural(len(validation.verdicts), 'register')} written"
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


def describe_validations(validations: Sequence[ModelValidation]) -> str:
    """Each model's verdict, then one line for them all (agreeing with the exit status)."""
    lines = [describe_validation(validation) for validation in validations]
    refused = [v.model for v in validations if not v.accepted]
    if refused:
        lines.append(
            f"This host's KVM refuses {len(refused)} of {plural(len(validations), 'model')}: "
            f"{', '.join(refused)}."
        )
    elif len(validations) == 1:
        lines.append("This host's KVM accepts the model.")
    else:
        lines.append(f"This host's KVM accepts all {len(validations)} models.")
    return "\n".join(lines)
