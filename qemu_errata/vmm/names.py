"""QEMU's names for what we set: CPU types, CPU and machine properties.

Two of them come from QEMU series not merged yet and may still be renamed:
the writable ID register fields of the KVM ``host`` CPU model
(``SYSREG_<REG>_<FIELD>``, Auger/Huck "customizable host model") and the
target implementation list of the ``virt`` machine (``impl-cpu.N.midr``,
``.revidr``, ``.aidr``). A rename is one edit here. This module also
recognises the arguments built from these names, so that applying a new model
to a domain removes exactly what an earlier one added.
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
_CPU_TYPE_SUFFIX = "-arm-cpu"


def cpu_type(model: str) -> str:
    """The QOM type of a ``-cpu`` model name, e.g. ``cortex-a57-arm-cpu``."""
    return f"{model}{_CPU_TYPE_SUFFIX}"


def sysreg_property(field: Field) -> str:
    """The ``host`` CPU property that sets one ID register field."""
    return f"{SYSREG_PREFIX}{field.register}_{field.name}"


def impl_cpu_property(index: int, key: str) -> str:
    """The machine property of entry ``index`` of the target implementation list."""
    return f"{IMPL_CPU_PROPERTY}.{index}.{key}"


def is_our_argument(option: str, value: str) -> bool:
    """Whether ``option value`` is one we render (a CPU property or the target list).

    ``-global <model>-arm-cpu.midr=...`` and ``-global host-arm-cpu.SYSREG_...=...``
    set what the pool model decides; a ``-machine`` made only of ``impl-cpu.*``
    keys is the target list.
    """
    if option == GLOBAL_OPTION:
        target, _, _ = value.partition("=")
        driver, _, prop = target.partition(".")
        return driver.endswith(_CPU_TYPE_SUFFIX) and (
            prop == MIDR_PROPERTY or prop.startswith(SYSREG_PREFIX)
        )
    if option == MACHINE_OPTION:
        keys = [item.partition("=")[0] for item in value.split(",")]
        return all(key.startswith(f"{IMPL_CPU_PROPERTY}.") for key in keys)
    return False
