"""The pool model: one CPU model every host of a pool can present, and its target list.

``baseline`` computes it from host profiles, field by field; ``check`` tells
whether one host can present a given model, judging each field the way KVM
judges a userspace write of it. One module per concept: ``model`` (the model
and its file format), ``blocker`` (why not), ``host`` (a host's values and
writable bits), ``baseline`` and ``check``.
"""

from qemu_errata.core.pool.baseline import (
    MAX_HOSTS_FOR_SUBSETS,
    baseline,
    baseline_of_types,
    check_host_names,
    largest_pools,
    pin_midr,
)
from qemu_errata.core.pool.blocker import REASONS, Blocker, Reason
from qemu_errata.core.pool.check import CheckResult, check
from qemu_errata.core.pool.host import (
    IDENTITY_REGISTER,
    TIMER_REGISTER,
    WRITABLE_IDENTITY_CAPABILITY,
    writable_bits,
)
from qemu_errata.core.pool.model import (
    MODEL_FORMAT,
    REGISTER_GROUPS,
    HostGroup,
    Loss,
    PoolModel,
    model_from_json,
)

__all__ = [
    "IDENTITY_REGISTER",
    "MAX_HOSTS_FOR_SUBSETS",
    "MODEL_FORMAT",
    "REASONS",
    "REGISTER_GROUPS",
    "TIMER_REGISTER",
    "WRITABLE_IDENTITY_CAPABILITY",
    "Blocker",
    "CheckResult",
    "HostGroup",
    "Loss",
    "PoolModel",
    "Reason",
    "baseline",
    "baseline_of_types",
    "check",
    "check_host_names",
    "largest_pools",
    "model_from_json",
    "pin_midr",
    "writable_bits",
]
