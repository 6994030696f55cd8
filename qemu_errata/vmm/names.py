"""QEMU's names for what we set: CPU types, CPU and machine properties.

Two of them come from QEMU series not merged yet and may still be renamed:
the writable ID register fields of the KVM ``host`` CPU model
(``SYSREG_<REG>_<FIELD>``, Auger/Huck "customizable host model") and the
target implementation list of the ``virt`` machine (``impl-cpu.N.midr``,
``.revidr``, ``.aidr``). A rename is one edit here.
"""

from __future__ import annotations

from qemu_errata.core.catalogue import Field

KVM_CPU_MODEL = "host"
MIDR_PROPERTY = "midr"
SYSREG_PREFIX = "SYSREG_"
IMPL_CPU_PROPERTY = "impl-cpu"
IMPL_CPU_KEYS = ("midr", "revidr", "aidr")

GLOBAL_OPTION = "-global"
MACHINE_OPTION = "-machine"
CPU_TYPE_SUFFIX = "-arm-cpu"


def cpu_type(model: str) -> str:
    """The QOM type of a ``-cpu`` model name, e.g. ``cortex-a57-arm-cpu``."""
    return f"{model}{CPU_TYPE_SUFFIX}"


def sysreg_property(field: Field) -> str:
    """The ``host`` CPU property that sets one ID register field."""
    return f"{SYSREG_PREFIX}{field.register}_{field.name}"


def impl_cpu_property(index: int, key: str) -> str:
    """The machine property of entry ``index`` of the target implementation list."""
    return f"{IMPL_CPU_PROPERTY}.{index}.{key}"
