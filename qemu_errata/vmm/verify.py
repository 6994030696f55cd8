"""Comparing what a running guest got with a pool model (pure: the reading is in qmp.py).

Every field of every register the model sets is compared with the guest's
value from the best source the VMM offers, or listed as not checked with the
reason: the vCPU's SYSREG properties (QEMU with the custom host model
series); for a TCG guest, the values our probe read from the same QEMU CPU
model (only where the guest runs that QEMU version and the machine options
the probe used: those decide some fields); nothing else under KVM, where
QMP does not show the registers.

The firmware pseudo-registers, the GIC CPU interface and (under KVM) the timer
frequency are the host's, not the VMM's: a guest keeps its start host's values
(check judges a host's against the model, the destination's KVM each migration's).
Only the PSCI version has a property that sets it (QEMU 11.1's ``kvm-psci-version``,
which reads back the version KVM reported when it made the vCPU): where the vCPU has
it, it is compared; the rest are listed as set by no VMM, never held against the
guest. A TCG guest has none of them: QEMU answers its PSCI calls itself.

Each vCPU must present a MIDR of the model's target list. Where the machine
has a target implementation list (``impl-cpu``), it must hold exactly the
model's entries. A guest without a list is a difference only where it could
have one and needs it: under KVM with more than one target; under TCG no
hypercall exists to give one.

A report vouches for the guest only when it compared everything a VMM sets and
found no difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qemu_errata.core.catalogue import Catalogue, Register, load_catalogue
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.profile import HostProfile
from qemu_errata.vmm.names import IMPL_CPU_KEYS, IMPL_CPU_PROPERTY

# The conditions under which the embedded qemu-<model> profiles were probed
# (probe/qemu.py: ``-machine virt,gic-version=3``, EL1 only, PMU on), and the
# fields each of them decides: a guest under other conditions differs there.
PROBE_CONDITIONS: Mapping[str, tuple[object, tuple[str, ...]]] = {
    "gic-version": ("3", ("ID_AA64PFR0_EL1.GIC", "ID_PFR1_EL1.GIC")),
    "has_el2": (
        False,
        ("ID_AA64PFR0_EL1.EL2", "ID_PFR1_EL1.Virtualization", "ID_PFR1_EL1.Virt_frac"),
    ),
    "has_el3": (
        False,
        (
            "ID_AA64PFR0_EL1.EL3",
            "ID_AA64PFR0_EL1.SEL2",
            "ID_PFR1_EL1.Security",
            "ID_PFR1_EL1.Sec_frac",
        ),
    ),
    "pmu": (True, ("ID_AA64DFR0_EL1.PMUVer", "ID_DFR0_EL1.PerfMon")),
}


@dataclass(frozen=True)
class GuestCpu:
    """One vCPU as QMP reports it."""

    index: int
    qom_path: str
    midr: int


@dataclass(frozen=True)
class GuestRegisters:
    """The guest's ID register fields as one source tells them.

    ``fields`` maps a qualified field name to its raw value; ``unknown`` maps
    the fields this source cannot vouch for to the reason.
    """

    source: str
    fields: Mapping[str, int]
    unknown: Mapping[str, str]


@dataclass(frozen=True)
class GuestState:
    """What a running QEMU gives its guest; ``impl_cpu`` is None without the property.

    ``registers`` is the reason no source of register values exists, when none does.
    """

    kvm: bool
    cpus: tuple[GuestCpu, ...]
    impl_cpu: object | None
    registers: GuestRegisters | str
    # The vCPU's ``cntfrq`` property under TCG (under KVM the guest sees the host's counter).
    timer_frequency_hz: int | None = None
    # The firmware registers' fields the vCPU's properties show (None: no property shows any).
    firmware: GuestRegisters | None = None


# Why the guest differs (Difference.reason; the "difference" definition of
# data/schemas/verify.schema.json lists the same).
DIFFERENCE_REASONS = (
    "field-differs",
    "timer-differs",
    "midr-not-in-target-list",
    "no-target-list",
    "target-list-lacks",
    "target-list-extra",
    "target-list-unreadable",
)


@dataclass(frozen=True)
class Difference:
    """One way the guest differs from the model, shaped as check's blockers are:
    the register (and field) where, why (DIFFERENCE_REASONS), the model's and the
    guest's value, and the sentence saying it all."""

    register: str
    field: str | None
    reason: str
    values: Mapping[str, str]
    message: str


@dataclass(frozen=True)
class Unchecked:
    """What could not be compared (register fields, registers, MIDRs), and why."""

    reason: str
    names: tuple[str, ...]


# Why a register of the model is not the VMM's to set (VerifyReport.not_set).
KEPT_FROM_HOST = (
    "no VMM sets them: the guest has its start host's values (check judges a host's against "
    "the model; the destination's KVM judges them on each migration)"
)
NONE_UNDER_TCG = (
    "a TCG guest has no KVM firmware registers or vGIC: QEMU's own emulation answers for them"
)


@dataclass(frozen=True)
class VerifyReport:
    """Every difference, everything not checked, notes that are neither, and what no VMM sets
    (``not_set``: listed, never held against the guest)."""

    differences: tuple[Difference, ...]
    not_checked: tuple[Unchecked, ...]
    notes: tuple[str, ...]
    compared_fields: int
    not_set: tuple[Unchecked, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.differences and not self.not_checked


def registers_from_profile(
    profile: HostProfile, catalogue: Catalogue, source: str, unknown: Mapping[str, str]
) -> GuestRegisters:
    """A probed CPU model's registers as the guest's fields (``unknown``: fields to distrust)."""
    fields = {
        field.qualified_name: field.raw(value)
        for name, value in profile.id_registers.items()
        if (register := catalogue.get(name)) is not None
        for field in register.fields
    }
    return GuestRegisters(source, fields, unknown)


def condition_differences(conditions: Mapping[str, object]) -> dict[str, str]:
    """The fields the guest's ``conditions`` (machine/vCPU property -> value) make unknown."""
    unknown = {}
    for name, (probed, fields) in PROBE_CONDITIONS.items():
        value = conditions.get(name)
        if value != probed:
            reason = f"the guest's {name} is {value!r}, the probe's was {probed!r}"
            unknown.update(dict.fromkeys(fields, reason))
    return unknown


def compare(
    model: PoolModel, guest: GuestState, catalogue: Catalogue | None = None
) -> VerifyReport:
    """What differs between ``guest`` and ``model``, and what could not be compared."""
    catalogue = catalogue or load_catalogue()
    differences: list[Difference] = []
    unchecked: dict[str, list[str]] = {}
    notes: list[str] = []
    compared = 0
    for name, value in model.id_registers.items():
        register = catalogue.get(name)
        if register is None:
            unchecked.setdefault("not catalogued, so its fields are unknown", []).append(name)
            continue
        if isinstance(guest.registers, str):
            unchecked.setdefault(guest.registers, []).append(name)
            continue
        compared += _compare_into(register, value, guest.registers, differences, unchecked)
    if not isinstance(guest.registers, str) and model.id_registers:
        notes.append(f"ID register fields read from {guest.registers.source}")
    not_set: dict[str, list[str]] = {}
    found, shown = _compare_host_registers(model, guest, catalogue, unchecked, not_set)
    differences.extend(found)
    compared += shown
    differences.extend(_compare_timer(model, guest, unchecked, not_set))
    differences.extend(_compare_midrs(model, guest, unchecked))
    differences.extend(_compare_target_list(model, guest, notes))
    return VerifyReport(
        tuple(differences), _groups(unchecked), tuple(notes), compared, _groups(not_set)
    )


def _groups(names_by_reason: Mapping[str, list[str]]) -> tuple[Unchecked, ...]:
    return tuple(Unchecked(reason, tuple(names)) for reason, names in names_by_reason.items())


def _compare_host_registers(
    model: PoolModel,
    guest: GuestState,
    catalogue: Catalogue,
    unchecked: dict[str, list[str]],
    not_set: dict[str, list[str]],
) -> tuple[list[Difference], int]:
    """The model's firmware and GIC registers: compared where a vCPU property shows them,
    else listed as set by no VMM. The differences, and how many fields were compared."""
    differences: list[Difference] = []
    compared = 0
    for name, value in {**model.firmware_registers, **model.gic_registers}.items():
        register, source = catalogue.get(name), guest.firmware
        if register is None or source is None or not _shows(source, register):
            not_set.setdefault(KEPT_FROM_HOST if guest.kvm else NONE_UNDER_TCG, []).append(name)
        else:
            compared += _compare_into(register, value, source, differences, unchecked)
    return differences, compared


def _compare_into(
    register: Register,
    value: int,
    source: GuestRegisters,
    differences: list[Difference],
    unchecked: dict[str, list[str]],
) -> int:
    """Compare ``register`` with ``source``, adding to ``differences`` and ``unchecked``; how
    many of its fields were compared."""
    found, missing = _compare_register(register, value, source)
    differences.extend(found)
    for reason, names in missing.items():
        unchecked.setdefault(reason, []).extend(names)
    return len(register.fields) - sum(len(names) for names in missing.values())


def _shows(source: GuestRegisters, register: Register) -> bool:
    """Whether ``source`` tells (or says why it cannot tell) any field of ``register``."""
    return any(
        f.qualified_name in source.fields or f.qualified_name in source.unknown
        for f in register.fields
    )


def _compare_register(
    register: Register, value: int, guest: GuestRegisters
) -> tuple[list[Difference], dict[str, list[str]]]:
    differences = []
    missing: dict[str, list[str]] = {}
    for field in register.fields:
        name = field.qualified_name
        wanted = field.raw(value)
        if name in guest.unknown:
            missing.setdefault(guest.unknown[name], []).append(name)
        elif name not in guest.fields:
            missing.setdefault(f"{guest.source} does not give them", []).append(name)
        elif guest.fields[name] != wanted:
            differences.append(
                Difference(
                    field.register,
                    field.name,
                    "field-differs",
                    {"model": f"{wanted:#x}", "guest": f"{guest.fields[name]:#x}"},
                    f"{field.qualified_name}: the model sets "
                    f"{field.describe(wanted)}, the guest has {field.describe(guest.fields[name])}",
                )
            )
    return differences, missing


def _compare_timer(
    model: PoolModel,
    guest: GuestState,
    unchecked: dict[str, list[str]],
    not_set: dict[str, list[str]],
) -> list[Difference]:
    if model.timer_frequency_hz is None:
        return []
    if guest.timer_frequency_hz is None:
        # Under KVM the guest's counter is its host's: no VMM sets its frequency.
        missing = (
            not_set.setdefault(KEPT_FROM_HOST, [])
            if guest.kvm
            else unchecked.setdefault("the vCPU has no cntfrq property", [])
        )
        missing.append(f"the timer frequency ({model.timer_frequency_hz} Hz)")
        return []
    if guest.timer_frequency_hz == model.timer_frequency_hz:
        return []
    return [
        Difference(
            "CNTFRQ_EL0",
            None,
            "timer-differs",
            {"model": str(model.timer_frequency_hz), "guest": str(guest.timer_frequency_hz)},
            f"timer frequency: the model has {model.timer_frequency_hz} Hz, "
            f"the guest's counter runs at {guest.timer_frequency_hz} Hz",
        )
    ]


def _compare_midrs(
    model: PoolModel, guest: GuestState, unchecked: dict[str, list[str]]
) -> list[Difference]:
    differences = []
    target_midrs = {target.midr for target in model.target_implementations}
    for cpu in guest.cpus:
        where = f"vCPU {cpu.index} ({cpu.qom_path})"
        if cpu.midr == 0 and guest.kvm:
            reason = "MIDR reads 0 under KVM (QEMU does not track the host's)"
            unchecked.setdefault(reason, []).append(f"the MIDR of {where}")
        elif cpu.midr not in target_midrs:
            differences.append(
                Difference(
                    "MIDR_EL1",
                    None,
                    "midr-not-in-target-list",
                    {"guest": f"{cpu.midr:#x}", "vcpu": str(cpu.index)},
                    f"{where} presents {Midr(cpu.midr).describe()}, "
                    f"which is not a target implementation of the model",
                )
            )
    return differences


def _compare_target_list(model: PoolModel, guest: GuestState, notes: list[str]) -> list[Difference]:
    if guest.impl_cpu is not None:
        return _compare_list(model, guest.impl_cpu)
    if guest.kvm and len(model.target_implementations) > 1:
        count = len(model.target_implementations)
        return [
            _list_difference(
                "no-target-list",
                {"model": str(count), "guest": "none"},
                f"the guest gets no target implementation list (this QEMU has no machine "
                f"property {IMPL_CPU_PROPERTY}), but the model has {count} implementations",
            )
        ]
    notes.append(f"no target implementation list (no machine property {IMPL_CPU_PROPERTY})")
    return []


def _compare_list(model: PoolModel, value: object) -> list[Difference]:
    entries = parse_impl_cpu(value)
    if entries is None:
        return [
            _list_difference(
                "target-list-unreadable",
                {"guest": repr(value)},
                f"the machine's {IMPL_CPU_PROPERTY} reads {value!r}, not a list of implementations",
            )
        ]
    differences = [
        _list_difference(
            "target-list-lacks",
            {"model": f"{target.midr:#x}"},
            f"the guest's target list lacks {_describe(target)}",
        )
        for target in model.target_implementations
        if not any(target.matches(e.midr, e.revidr, e.aidr) for e in entries)
    ]
    differences.extend(
        _list_difference(
            "target-list-extra",
            {"guest": f"{entry.midr:#x}"},
            f"the guest's target list has {_describe(entry)}, which the model does not list",
        )
        for entry in entries
        if model.target_implementations.find(entry.midr, entry.revidr, entry.aidr) is None
    )
    return differences


def _list_difference(reason: str, values: Mapping[str, str], message: str) -> Difference:
    """A difference of the machine's target implementation list (its property names it)."""
    return Difference(IMPL_CPU_PROPERTY, None, reason, values, message)


def parse_impl_cpu(value: object) -> Sequence[TargetImplementation] | None:
    """The machine's list as ``qom-get`` returns it: objects of midr/revidr/aidr numbers."""
    if not isinstance(value, list):
        return None
    entries = []
    for item in value:
        if not isinstance(item, dict):
            return None
        numbers = [_number(item.get(key)) for key in IMPL_CPU_KEYS]
        midr, revidr, aidr = numbers
        if midr is None:
            return None
        entries.append(TargetImplementation(midr, revidr, aidr))
    return entries


def _number(raw: object) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw, 0)
        except ValueError:
            return None
    return None


def _describe(target: TargetImplementation) -> str:
    return f"{Midr(target.midr).describe()} ({target.revidr_aidr()})"
