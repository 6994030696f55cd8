"""What a VMM is given to present a pool model, by dialect (pure: no I/O).

``qemu-kvm`` (a KVM host with the out-of-tree QEMU series): ``-cpu host``, one
``SYSREG_<REG>_<FIELD>`` property per ID register field the model sets
(fields_to_set), and the target implementation list as
``-machine impl-cpu.N.*`` when it has more than one entry (a guest told of
one implementation learns nothing its MIDR does not say). A field no property sets is refused, never
silently left to the host.

``qemu-tcg`` (test beds and nested hosts on released QEMU): a named CPU model
presenting one MIDR, the model's target implementation of the lowest MIDR; every host
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

from qemu_errata.core.catalogue import Catalogue, Field, load_catalogue
from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import IDENTITY_REGISTER, PoolModel, writable_bits
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.registers_table import ID_REGISTER_KINDS, Kind
from qemu_errata.core.vmms import PSCI_VERSION, Vmm
from qemu_errata.errors import InputError, UnsettableFieldsError, UnsupportedDialectError
from qemu_errata.vmm import names as vmm_names

_PROBED_PREFIX = "qemu-"
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
    # Fields the model sets that no property sets (require_settable refuses them), and
    # where the property names were looked for.
    unsettable: tuple[str, ...] = ()
    names_source: str = ""

    @property
    def cpu_type(self) -> str:
        return vmm_names.cpu_type(self.cpu_model)


def vmm_config(
    model: PoolModel,
    dialect: Dialect,
    qemu_cpu: str | None = None,
    *,
    names: vmm_names.SysregNames | None = None,
    host: HostProfile | None = None,
    qemu_checks_cpu: bool = False,
    vmm: Vmm | None = None,
) -> VmmConfig:
    """How ``dialect`` presents ``model``.

    ``qemu_cpu`` names the qemu-tcg CPU model, one we have a probe of unless
    ``qemu_checks_cpu`` (the caller asks a QEMU whether it has that CPU type);
    ``names`` how the QEMU names its SYSREG properties (default: the newest
    series); ``host`` the profile of the host the configuration is for, so
    that only the fields it differs in are set; ``vmm`` the qemu-kvm VMM whose
    capabilities decide (None: SYSREG and impl-cpu, no firmware property).
    """
    if dialect is Dialect.QEMU_TCG:
        if qemu_cpu is None:
            raise InputError("qemu-tcg needs a named CPU model (--qemu-cpu MODEL)")
        known = probed_cpu_models()
        if checked_cpu_model(qemu_cpu) not in known and not qemu_checks_cpu:
            raise InputError(
                f"CPU model {qemu_cpu!r}: unknown (known: {', '.join(sorted(known))}, and what "
                f"this machine's qemu-system-aarch64 -cpu help lists; render's --qmp or "
                f"--qemu-binary asks another QEMU)"
            )
        return _tcg_config(model, qemu_cpu)
    if qemu_cpu is not None:
        raise InputError(f"--qemu-cpu {qemu_cpu}: qemu-kvm always uses the host CPU model")
    return _kvm_config(
        model,
        load_catalogue(),
        names or vmm_names.SysregNames(vmm_names.DEFAULT_SERIES),
        host,
        vmm,
    )


def probed_cpu_models() -> frozenset[str]:
    """The QEMU CPU models an embedded ``qemu-<model>`` profile describes."""
    return frozenset(
        name.removeprefix(_PROBED_PREFIX)
        for name in embedded_profile_names()
        if name.startswith(_PROBED_PREFIX)
    )


def checked_cpu_model(name: str) -> str:
    """``name`` if it can be a QEMU CPU model name; InputError otherwise."""
    if not _CPU_MODEL_NAME.fullmatch(name):
        raise InputError(f"--qemu-cpu {name!r}: not a QEMU CPU model name")
    return name


def fields_to_set(
    model: PoolModel, catalogue: Catalogue, host: HostProfile | None
) -> tuple[list[tuple[Field, int]], list[str]]:
    """The ID register fields a VMM must set with the raw value of each, and what no
    VMM can set (uncatalogued registers; fields the host's KVM does not let userspace write).

    For one host: each field where the model differs from that host's own value.
    Otherwise, for a model from ``baseline`` (it names its host types): its
    losses, the fields where it differs from some host of the pool (every
    other field is each host's own; a pool of one host type has none).
    For a hand-written model, which names no host types: every field it gives.
    The MIDR is set only where the model pins it (pool.pin_midr); REVIDR and AIDR never.
    """
    if host is None and model.host_groups:
        pinned = [
            (field, field.raw(model.id_registers[IDENTITY_REGISTER]))
            for field in catalogue[IDENTITY_REGISTER].fields
            if IDENTITY_REGISTER in model.id_registers
        ]
        written = [
            (loss.field, loss.pool_value)
            for loss in model.losses
            if catalogue[loss.field.register].kind in ID_REGISTER_KINDS
        ]  # the firmware registers a VMM pins are its own properties (_firmware_pins)
        return [*pinned, *written], []
    wanted: list[tuple[Field, int]] = []
    refused: list[str] = []
    for name, value in model.id_registers.items():
        register = catalogue.get(name)
        if register is None:
            refused.append(f"{name} (not catalogued)")
            continue
        if register.kind is Kind.IDENTITY and name != IDENTITY_REGISTER:
            continue
        own = None if host is None else host.id_registers.get(name)
        writable = None if host is None else writable_bits(host, name, register)
        for field in register.fields:
            if own is not None and field.raw(own) == field.raw(value):
                continue
            if host is not None and writable is not None and field.mask & ~writable:
                refused.append(
                    f"{field.qualified_name} (KVM of {host.host} does not let it be set)"
                )
            else:
                wanted.append((field, field.raw(value)))
    return wanted, refused


def _kvm_config(
    model: PoolModel,
    catalogue: Catalogue,
    names: vmm_names.SysregNames,
    host: HostProfile | None,
    vmm: Vmm | None,
) -> VmmConfig:
    properties = []
    wanted, unsettable = fields_to_set(model, catalogue, host)
    if vmm is not None and not vmm.sysreg_series and names.discovered is None:
        names = vmm_names.SysregNames(
            names.series, {}, f"{vmm.describe()}, which has no SYSREG_* properties"
        )
    for field, value in wanted:
        name = names.property_of(field, catalogue)
        if name is None:
            unsettable.append(field.qualified_name)
        else:
            properties.append((name, f"{value:#x}"))
    notes = []
    if not properties:
        where = f"host {host.host}" if host is not None else "every host"
        notes.append(f"the model sets no ID register field: {where} presents its own values")
    properties += _firmware_pins(model, vmm)
    machine = []
    # One implementation is the one the guest's MIDR names: the list would say nothing more.
    listed = model.target_implementations if len(model.target_implementations) > 1 else ()
    for index, target in enumerate(listed):
        values = (target.midr, target.revidr, target.aidr)
        for key, known in zip(vmm_names.IMPL_CPU_KEYS, values, strict=True):
            if known is not None:
                machine.append((vmm_names.impl_cpu_property(index, key), f"{known:#x}"))
            else:
                notes.append(
                    f"{key.upper()} of {Midr(target.midr).describe()} is unknown: "
                    f"QEMU's default is given to the guest"
                )
    return VmmConfig(
        dialect=Dialect.QEMU_KVM,
        cpu_model=vmm_names.KVM_CPU_MODEL,
        cpu_properties=tuple(properties),
        machine_properties=tuple(machine),
        notes=tuple(notes),
        unsettable=tuple(unsettable),
        names_source=names.describe(),
    )


def _firmware_pins(model: PoolModel, vmm: Vmm | None) -> list[tuple[str, str]]:
    """The CPU properties pinning the model's firmware registers the VMM can set: the
    guest then carries the pool's value, not its start host's (see core/migration.py)."""
    if vmm is None:
        return []
    return [
        (name, _firmware_value(register, model.firmware_registers[register]))
        for register, name in vmm.firmware_properties.items()
        if register in model.firmware_registers
    ]


def _firmware_value(register: str, value: int) -> str:
    """How QEMU takes the value: ``kvm-psci-version=1.1`` (major.minor), else hex."""
    if register == PSCI_VERSION:
        return f"{value >> 16}.{value & 0xFFFF}"
    return f"{value:#x}"


def firmware_value_read(register: str, text: object) -> int | None:
    """The register's value from what its property reads back (_firmware_value's form);
    None for anything else (QEMU 11.1 reads "Unknown PSCI-version: N" for a version it has
    no name for)."""
    if not isinstance(text, str):
        return None
    if register == PSCI_VERSION:
        major, dot, minor = text.partition(".")
        whole = dot and major.isdecimal() and minor.isdecimal()
        return int(major) << 16 | int(minor) if whole else None
    try:
        return int(text, 16)
    except ValueError:
        return None


def require_settable(config: VmmConfig) -> None:
    """Refuse a configuration that would leave some field of the model unset."""
    if config.unsettable:
        raise UnsettableFieldsError(config.dialect.value, config.unsettable, config.names_source)


def _tcg_config(model: PoolModel, cpu_model: str) -> VmmConfig:
    presented = model.target_implementations[0]
    notes = [
        f"a TCG guest gets no target implementation list (TCG has no hypercall for it): "
        f"it sees only {Midr(presented.midr).describe()}, the model's target implementation "
        f"of the lowest MIDR, and applies that implementation's errata workarounds only"
    ]
    notes.append(_tcg_field_note(model, cpu_model))
    return VmmConfig(
        dialect=Dialect.QEMU_TCG,
        cpu_model=cpu_model,
        cpu_properties=((vmm_names.MIDR_PROPERTY, f"{presented.midr:#x}"),),
        machine_properties=(),
        notes=tuple(notes),
    )


def _tcg_field_note(model: PoolModel, cpu_model: str) -> str:
    """What the guest sees instead of the model's fields: qemu-tcg sets none of them."""
    said = f"qemu-tcg sets no ID register field: the guest sees CPU model {cpu_model}'s own"
    name = f"{_PROBED_PREFIX}{cpu_model}"
    if name not in embedded_profile_names():
        return f"{said} values (no probe of it is embedded to compare with the model's)"
    probed = load_embedded_profile(name).id_registers
    catalogue = load_catalogue()
    differing = [
        field.qualified_name
        for register_name, value in model.id_registers.items()
        if (register := catalogue.get(register_name)) is not None and register_name in probed
        for field in register.fields
        if field.raw(value) != field.raw(probed[register_name])
    ]
    if not differing:
        return f"{said} values, which equal the model's where our probe of it read them"
    return f"{said} values, which differ from the model's in {', '.join(differing)}"


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
    missing.extend(f"a CPU property setting {field}" for field in config.unsettable)
    return missing


def lacking_in(config: VmmConfig, vmm: Vmm) -> list[str]:
    """What ``config`` needs that the capability table says ``vmm`` lacks (the properties
    of a QEMU asked over QMP are judged by missing_capabilities instead)."""
    if config.machine_properties and not vmm.impl_cpu:
        return [f"machine property {vmm_names.VIRT_MACHINE_TYPE}.{vmm_names.IMPL_CPU_PROPERTY}"]
    return []


def check_supported(config: VmmConfig, capabilities: VmmCapabilities) -> None:
    """Raise UnsupportedDialectError naming everything the QEMU lacks for ``config``."""
    missing = missing_capabilities(config, capabilities)
    if missing:
        raise UnsupportedDialectError(config.dialect.value, missing)
