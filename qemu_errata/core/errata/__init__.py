"""Errata: which workarounds and mitigations a guest kernel enables for a set of CPUs (pure).

The facts are ``data/errata.toml``, derived by scripts/errata-sync from the
Debian kernel packages guests run (one row per workaround and per erratum, each
saying which releases carry it, with which capability and log line, and which
Debian builds leave it out); what each workaround does, in our words, is
``data/errata-effects.toml``. ``load_errata_table(release)`` resolves both for
one guest kernel release (``7.2.13``; the newest known by default).

Matching follows the kernel's own rules: a MIDR range compares implementer,
architecture and part number, then the variant/revision pair within [from, to];
a range may name one revision that is fixed when the CPU's REVIDR has any of
some bits (``MIDR_FIXED``). Linux 6.15 and later, given the target
implementation list by the hypervisor, enable a workaround when ANY listed
implementation is affected; how a listed CPU's REVIDR counts is the release's
``target_list_rule`` (6.15 to 7.2.8 compared a fixed range with the whole list,
7.2.9 each listed CPU with its own MIDR); 6.12 decides from the one MIDR/REVIDR
it reads. A few matches never consult the list (the Kryo part-family match,
Fujitsu's early-boot check): those only hold on hosts of that implementation.
Further conditions are ID register fields: ``requires`` decides whether the
kernel enables a workaround at all, ``matters_only_if`` whether it changes
anything; both are judged on the registers the guest sees (the pool model's
values).
"""

from qemu_errata.core.errata.decisions import (
    Enabled,
    KernelView,
    MitigationVerdict,
    PoolErrata,
    Suppressed,
    Workaround,
    added_by,
    brought_only_by,
    guest_workarounds,
    kernel_view,
    pool_errata,
)
from qemu_errata.core.errata.table import (
    APPLIES,
    ERRATA_TABLE_FORMAT,
    OTHERWISE,
    RULE_ANY_IN_RANGE,
    RULE_OWN_CPU,
    TARGET_LIST_KERNEL,
    CpuRange,
    ErrataTable,
    Erratum,
    FieldTest,
    Mitigation,
    known_kernels,
    load_errata_table,
    release_of,
    resolve_errata_table,
    series_of,
)

__all__ = [
    "APPLIES",
    "ERRATA_TABLE_FORMAT",
    "OTHERWISE",
    "RULE_ANY_IN_RANGE",
    "RULE_OWN_CPU",
    "TARGET_LIST_KERNEL",
    "CpuRange",
    "Enabled",
    "ErrataTable",
    "Erratum",
    "FieldTest",
    "KernelView",
    "Mitigation",
    "MitigationVerdict",
    "PoolErrata",
    "Suppressed",
    "Workaround",
    "added_by",
    "brought_only_by",
    "guest_workarounds",
    "kernel_view",
    "known_kernels",
    "load_errata_table",
    "pool_errata",
    "release_of",
    "resolve_errata_table",
    "series_of",
]
