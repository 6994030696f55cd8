"""QEMU arguments of a VmmConfig (pure): what we add to a command line, and how to recognise it.

CPU properties are given as ``-global <cpu type>.<property>=<value>``, which
is what QEMU itself turns ``-cpu host,<property>=<value>`` into; libvirt
renders ``-cpu`` from the domain's ``<cpu>`` element, so the same ``-global``
arguments serve both the command line and the domain XML. Recognising them
lets a new model applied to a domain remove exactly what an earlier one added.
"""

from __future__ import annotations

from qemu_errata.vmm import names as vmm_names
from qemu_errata.vmm.dialects import VmmConfig


def commandline_arguments(config: VmmConfig) -> list[str]:
    """The arguments beyond ``-cpu``: those a libvirt domain carries in qemu:commandline."""
    arguments = []
    for name, value in config.cpu_properties:
        arguments += [vmm_names.GLOBAL_OPTION, f"{config.cpu_type}.{name}={value}"]
    if config.machine_properties:
        machine = ",".join(f"{name}={value}" for name, value in config.machine_properties)
        arguments += [vmm_names.MACHINE_OPTION, machine]
    return arguments


def qemu_arguments(config: VmmConfig) -> list[str]:
    """The arguments to add to a QEMU command line (which names its own machine)."""
    return ["-cpu", config.cpu_model, *commandline_arguments(config)]


def is_our_argument(option: str, value: str) -> bool:
    """Whether ``option value`` is one we render (a CPU property or the target list).

    ``-global <model>-arm-cpu.midr=...`` and ``-global host-arm-cpu.SYSREG_...=...``
    set what the pool model decides; a ``-machine`` made only of ``impl-cpu.*``
    keys is the target list.
    """
    if option == vmm_names.GLOBAL_OPTION:
        target, _, _ = value.partition("=")
        driver, _, prop = target.partition(".")
        return driver.endswith(vmm_names.CPU_TYPE_SUFFIX) and (
            prop == vmm_names.MIDR_PROPERTY or prop.startswith(vmm_names.SYSREG_PREFIX)
        )
    if option == vmm_names.MACHINE_OPTION:
        keys = [item.partition("=")[0] for item in value.split(",")]
        return all(key.startswith(f"{vmm_names.IMPL_CPU_PROPERTY}.") for key in keys)
    return False
