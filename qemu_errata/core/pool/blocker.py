"""Why a pool cannot be formed, or a host cannot present a model: blockers and their reasons."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from qemu_errata.core.record import field as record_field
from qemu_errata.core.record import record


class Reason(enum.StrEnum):
    """The reasons a Blocker can give: stable keys for tools reading --json output."""

    TYPES_ONLY = "types-only"  # a profile without ID registers (sysfs)
    NOT_REPORTED = "not-reported"  # a host does not report the register
    NOT_PRESENTABLE = "not-presentable"  # no value of the field is presentable on every host
    NOT_SAFE = "not-safe"  # the host cannot present the model's value (not writable, or not safe)
    KVM_REFUSES = "kvm-refuses"  # KVM's check of the whole register refuses the value
    MUST_BE_EQUAL = "must-be-equal"  # bits outside every field differ
    TIMER_DIFFERS = "timer-differs"  # timer frequencies differ
    NOT_IN_TARGET_LIST = "not-in-target-list"  # a host CPU is not in the model's target list
    NOT_SETTABLE = "not-settable"  # no VMM sets the register, and a host refuses another's value
    CANNOT_PIN_MIDR = "cannot-pin-midr"  # the model pins the guest's MIDR, a host cannot set it
    VMM_CANNOT_SET = "vmm-cannot-set"  # the pool needs a write the deciding VMM cannot make
    REFUSED_ON_ARRIVAL = "refused-on-arrival"  # a migrating VM carries a value KVM refuses there
    REGISTER_LIST = "register-list"  # a migrating VM lists a register the destination lacks
    REWRITTEN_AT_FIRST_RUN = "rewritten-at-first-run"  # accepted, then rewritten at first run
    LOST_MITIGATION = "lost-mitigation"  # guests skip a mitigation a host needs (not accepted)


# The reasons as the strings --json output carries, in the order above.
REASONS = tuple(reason.value for reason in Reason)


@record
class Blocker:
    """One reason a pool cannot be formed, or a host cannot present a model.

    ``reason`` is a stable key for tools (see Reason); ``values`` the value of
    each host involved (and ``model`` for the model's), as hex or with a unit.
    """

    register: str
    field: str | None
    message: str
    reason: Reason
    values: Mapping[str, str] = record_field(default_factory=dict)

    def __str__(self) -> str:
        return self.message
