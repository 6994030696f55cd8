"""Errata: which workarounds and mitigations a guest kernel enables for a set of CPUs (pure).

The table is ``data/errata.toml``. Matching follows the kernel's own rules: a
MIDR range compares implementer, architecture and part number, then the
variant/revision pair within [from, to]; a range may name one revision that is
fixed when the CPU's REVIDR has any of some bits (``MIDR_FIXED``). Linux 6.15
and later, given the target implementation list by the hypervisor, enable a
workaround when ANY listed implementation is affected; an older kernel decides
from the one MIDR/REVIDR it reads. A few matches never consult the list (the
Kryo part-family match, Fujitsu's early-boot check): those only hold on hosts
of that implementation. Further conditions are ID register fields: ``requires``
decides whether the kernel enables a workaround at all, ``matters_only_if``
whether it changes anything; both are judged on the registers the guest sees
(the pool model's values). Which kernels carry a workaround: those from its
mainline ``since`` on, some point releases of the older series it was
back-ported to (``stable``), and not the builds of distributions that leave it
out (``left_out_by``), as the nested hosts' Debian kernel Images show.
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
    carries,
    guest_workarounds,
    kernel_view,
    pool_errata,
)
from qemu_errata.core.errata.table import (
    APPLIES,
    ERRATA_TABLE_FORMAT,
    MATCHED_BY,
    OTHERWISE,
    TARGET_LIST_KERNEL,
    CpuRange,
    ErrataTable,
    Erratum,
    FieldTest,
    Mitigation,
    load_errata_table,
    load_table_capabilities,
    parse_errata_table,
)

__all__ = [
    "APPLIES",
    "ERRATA_TABLE_FORMAT",
    "MATCHED_BY",
    "OTHERWISE",
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
    "carries",
    "guest_workarounds",
    "kernel_view",
    "load_errata_table",
    "load_table_capabilities",
    "parse_errata_table",
    "pool_errata",
]
