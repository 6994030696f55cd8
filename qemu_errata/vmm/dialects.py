"""What a VMM is given to present a pool model, by dialect (pure: no I/O).

``qemu-kvm`` (a KVM host with the out-of-tree QEMU series): ``-cpu host``, one
``SYSREG_<REG>_<FIELD>`` property per ID register field the model changes, and
the target implementation list as ``-machine impl-cpu.N.*``. The fields the
model changes are its losses: the fields whose pool value differs from some
host's own. A hand-written model records no losses, so it sets no field, only
the target list: every host then presents its own values, which is right only
where ``check`` found them equal to the model's.

``qemu-tcg`` (test beds and nested hosts on released QEMU): a named CPU model
presenting one MIDR, the model's first target implementation; every host
renders the same, as QEMU requires for migration (it checks constant
registers on the incoming side). A TCG guest gets no target list: there is no
hypercall to ask for it.

The arguments that carry a configuration are args.py's; the domain XML that
carries it is domain_xml.py's.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from qemu_errata.core.catalogue import Catalogue, Kind, load_catalogue
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import Loss, PoolModel
from qemu_errata.errors import InputError, UnsupportedDialectError
from qemu_errata.vmm import names as vmm_names

# A -cpu model name that cannot break the option syntax it is embedded in.
_CPU_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class Dialect(enum.Enum):
    """How a VMM is told the model: which QEMU, with which accelerator."""

    QEMU_KVM = "qemu-kvm"
    QEMU_TCG = "qemu-tcg"


@dataclass(frozen=True)
class VmmConfig:
    """The CPU model, its properties and the machine properties that present a model."""

    dialect: Dialect
    cpu_model: str
    cpu_properties: tuple[tuple[str, str], ...]
    machine_properties: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]

    @property
    def cpu_type(self) -> str:
        return vmm_names.cpu_type(self.cpu_model)


def vmm_config(
    model: PoolModel,
    dialect: Dialect,
    qemu_cpu: str | None = None,
) -> VmmConfig:
    """How ``dialect`` presents ``model``; ``qemu_cpu`` names the qemu-tcg CPU model."""
    if dialect is Dialect.QEMU_TCG:
        if qemu_cpu is None:
            raise InputError("qemu-tcg needs a named CPU model (--qemu-cpu MODEL)")
        return _tcg_config(model, _checked_cpu_model(qemu_cpu))
    if qemu_cpu is not None:
        raise InputError(f"--qemu-cpu {qemu_cpu}: qemu-kvm always uses the host CPU model")
    return _kvm_config(model, load_catalogue())


def _checked_cpu_model(name: str) -> str:
    if not _CPU_MODEL_NAME.fullmatch(name):
        raise InputError(f"--qemu-cpu {name!r}: not a QEMU CPU model name")
    return name


def _kvm_config(model: PoolModel, catalogue: Catalogue) -> VmmConfig:
    settable: list[Loss] = []
    unsettable: list[Loss] = []
    for loss in model.losses:
        (settable if _settable(loss, catalogue) else unsettable).append(loss)
    notes = []
    if not model.losses:
        notes.append(
            "the model records no lost fields (hand-written models carry none), so no ID "
            "register field is set: each host presents its own values, and only the target "
            "implementation list is given"
        )
    if unsettable:
        names = ", ".join(loss.field.qualified_name for loss in unsettable)
        notes.append(f"no QEMU property sets {names}: each host presents its own value")
    machine = []
    for index, target in enumerate(model.target_implementations):
        values = (target.midr, target.revidr, target.aidr)
        for key, value in zip(vmm_names.IMPL_CPU_KEYS, values, strict=True):
            if value is not None:
                machine.append((vmm_names.impl_cpu_property(index, key), f"{value:#x}"))
            else:
                notes.append(
                    f"{key.upper()} of {Midr(target.midr).describe()} is unknown: "
                    f"QEMU's default is given to the guest"
                )
    return VmmConfig(
        dialect=Dialect.QEMU_KVM,
        cpu_model=vmm_names.KVM_CPU_MODEL,
        cpu_properties=tuple(
            (vmm_names.sysreg_property(loss.field), f"{loss.pool_value:#x}") for loss in settable
        ),
        machine_properties=tuple(machine),
        notes=tuple(notes),
    )


def _settable(loss: Loss, catalogue: Catalogue) -> bool:
    """Only ID registers of KVM's writable range have SYSREG_ properties."""
    register = catalogue.get(loss.field.register)
    return (
        register is not None
        and register.kind is not Kind.IDENTITY
        and register.kvm_mask_index is not None
    )


def _tcg_config(model: PoolModel, cpu_model: str) -> VmmConfig:
    presented = model.target_implementations[0]
    notes = [
        f"a TCG guest gets no target implementation list (TCG has no hypercall for it): "
        f"it sees only {Midr(presented.midr).describe()}, the model's first target "
        f"implementation, and applies that implementation's errata workarounds only"
    ]
    if model.losses:
        notes.append(
            f"qemu-tcg sets no ID register field: the guest sees CPU model {cpu_model}'s own "
            f"values, not the {len(model.losses)} fields the model lowers"
        )
    return VmmConfig(
        dialect=Dialect.QEMU_TCG,
        cpu_model=cpu_model,
        cpu_properties=((vmm_names.MIDR_PROPERTY, f"{presented.midr:#x}"),),
        machine_properties=(),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class VmmCapabilities:
    """What a running QEMU offers: KVM, and the properties of its machine and CPU type.

    ``cpu_properties`` is None when the CPU type does not exist in that QEMU.
    """

    kvm_enabled: bool
    machine_type: str
    machine_properties: frozenset[str]
    cpu_type: str
    cpu_properties: frozenset[str] | None


def missing_capabilities(config: VmmConfig, capabilities: VmmCapabilities) -> list[str]:
    """Everything ``config`` needs that the QEMU of ``capabilities`` lacks."""
    missing = []
    if config.dialect is Dialect.QEMU_KVM and not capabilities.kvm_enabled:
        missing.append("KVM (this QEMU runs without it)")
    if (
        config.machine_properties
        and vmm_names.IMPL_CPU_PROPERTY not in capabilities.machine_properties
    ):
        missing.append(
            f"machine property {capabilities.machine_type}.{vmm_names.IMPL_CPU_PROPERTY}"
        )
    assert capabilities.cpu_type == config.cpu_type, "capabilities of another CPU type"
    offered = capabilities.cpu_properties
    if offered is None:
        missing.append(f"CPU type {config.cpu_type}")
    missing.extend(
        f"CPU property {config.cpu_type}.{name}"
        for name, _ in config.cpu_properties
        if offered is None or name not in offered
    )
    return missing


def check_supported(config: VmmConfig, capabilities: VmmCapabilities) -> None:
    """Raise UnsupportedDialectError naming everything the QEMU lacks for ``config``."""
    missing = missing_capabilities(config, capabilities)
    if missing:
        raise UnsupportedDialectError(config.dialect.value, missing)
