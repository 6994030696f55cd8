"""Planning pools for a fleet: which host types can share a pool, and a proposed partition.

Pure. One module per concept: ``types`` (plan types and the words that tell them
apart), ``fit`` (whether a set of types forms a pool, register verdicts shared),
``blocks`` (sets of types judged once, their models and deciding fields), ``search``
(the exact partition and the merging heuristic), ``explain`` (why types are apart,
why no partition exists) and ``proposal`` (the plan).
"""

from qemu_errata.core.plan.explain import Apart
from qemu_errata.core.plan.proposal import (
    EXACT_TYPES,
    Cell,
    Pairing,
    Plan,
    ProposedPool,
    plan,
    pools_served,
)
from qemu_errata.core.plan.types import PlanType, plan_types

__all__ = [
    "EXACT_TYPES",
    "Apart",
    "Cell",
    "Pairing",
    "Plan",
    "PlanType",
    "ProposedPool",
    "plan",
    "plan_types",
    "pools_served",
]
