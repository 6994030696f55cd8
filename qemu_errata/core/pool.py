"""The pool model: one CPU model every host of a pool can present, and its target list.

``baseline`` computes it from host profiles, field by field; ``check`` tells
whether one host can present a given model, judging each field the way KVM
judges a userspace write of it.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from dataclasses import field as dataclass_field
from typing import Any

from qemu_errata.core.catalogue import (
    Catalogue,
    Field,
    Kind,
    Register,
    load_catalogue,
    reserved_bits,
)
from qemu_errata.core.cpulist import format_cpus
from qemu_errata.core.document import DocumentReader, hex_registers, is_string_list, parse_register
from qemu_errata.core.hosttypes import HostType, group_hosts, label_of
from qemu_errata.core.implementations import TargetImplementations, read_targets
from qemu_errata.core.midr import Midr
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.rules import accepts, combine, register_refusal
from qemu_errata.core.vmms import Vmm
from qemu_errata.errors import IncompatiblePoolError, InputError

MODEL_FORMAT = "qemu-errata/pool-model/1"
# The register maps a profile and a model carry, in the order they are reported.
REGISTER_GROUPS = ("id_registers", "firmware_registers", "gic_registers")
MODEL_KEYS = frozenset(
    {
        "format",
        "hosts",
        "target_implementations",
        "timer_frequency_hz",
        *REGISTER_GROUPS,
        "host_types",
        "host_writes",  # models written before host types
        "losses",
        "notes",
        "errata_cost",  # in baseline --json output, which may be saved as the model
    }
)
LOSS_KEYS = frozenset({"register", "field", "pool_value", "host_values", "explanation"})
TIMER_REGISTER = "CNTFRQ_EL0"
# What check() names as the register of a host CPU outside the target list.
IDENTITY_REGISTER = "MIDR_EL1"


@dataclass(frozen=True)
class Blocker:
    """One reason a pool cannot be formed, or a host cannot present a model.

    ``reason`` is a stable key for tools (see REASONS); ``values`` the value of
    each host involved (and ``model`` for the model's), as hex or with a unit.
    """

    register: str
    field: str | None
    message: str
    reason: str
    values: Mapping[str, str] = dataclass_field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        return {
            "register": self.register or None,
            "field": self.field,
            "reason": self.reason,
            "values": dict(self.values),
            "message": self.message,
        }


# The reasons a Blocker can give, for tools reading --json output.
REASONS = (
    "types-only",  # a profile without ID registers (sysfs)
    "not-reported",  # a host does not report the register
    "not-presentable",  # no value of the field is presentable on every host
    "not-safe",  # the host cannot present the model's value (not writable, or not safe)
    "kvm-refuses",  # KVM's check of the whole register refuses the value
    "must-be-equal",  # bits outside every field differ
    "timer-differs",  # timer frequencies differ
    "not-in-target-list",  # a host CPU is not in the model's target implementation list
    "not-settable",  # no VMM sets the register, and a host refuses another's own value
    "cannot-pin-midr",  # the model pins the guest's MIDR, and a host cannot set it
    "vmm-cannot-set",  # the pool needs a write the deciding VMM cannot make
    "refused-on-arrival",  # a migrating VM carries a value the destination's KVM refuses
    "register-list",  # a migrating VM's register list has one the destination kernel lacks
    "rewritten-at-first-run",  # KVM accepts the value, then rewrites it at the first run
)


@dataclass(frozen=True)
class Loss:
    """A field whose pool value differs from some hosts' own: what they lose."""

    field: Field
    pool_value: int
    host_values: Mapping[str, int]

    def explain(self) -> str:
        hosts = ", ".join(f"{h} has {self.field.describe(v)}" for h, v in self.host_values.items())
        pool = self.field.describe(self.pool_value)
        return f"{self.field.qualified_name}: the pool presents {pool}; {hosts}"

    def to_json(self) -> dict[str, Any]:
        return {
            "register": self.field.register,
            "field": self.field.name,
            "pool_value": f"{self.pool_value:#x}",
            "host_values": {h: f"{v:#x}" for h, v in self.host_values.items()},
            "explanation": self.explain(),
        }


@dataclass(frozen=True)
class HostGroup:
    """Hosts of one type in a pool, and the registers the VMM writes on each of them."""

    description: str
    hosts: tuple[str, ...]
    writes: tuple[str, ...]

    @property
    def label(self) -> str:
        return label_of(self.hosts)

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "hosts": list(self.hosts),
            "host_writes": list(self.writes),
        }


@dataclass(frozen=True)
class PoolModel:
    """What a pool's VMs are given: register values, target list, timer frequency."""

    id_registers: Mapping[str, int]
    target_implementations: TargetImplementations
    timer_frequency_hz: int | None = None
    firmware_registers: Mapping[str, int] = field(default_factory=dict)
    gic_registers: Mapping[str, int] = field(default_factory=dict)
    host_groups: tuple[HostGroup, ...] = ()
    losses: tuple[Loss, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host of the pool, type by type."""
        return tuple(host for group in self.host_groups for host in group.hosts)

    @property
    def host_writes(self) -> dict[str, tuple[str, ...]]:
        """Per host, the registers the VMM writes there."""
        return {host: group.writes for group in self.host_groups for host in group.hosts}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "hosts": list(self.hosts),
            "target_implementations": self.target_implementations.to_json(),
            "timer_frequency_hz": self.timer_frequency_hz,
            **{group: hex_registers(getattr(self, group)) for group in REGISTER_GROUPS},
            "host_types": [group.to_json() for group in self.host_groups],
            "losses": [loss.to_json() for loss in self.losses],
            "notes": list(self.notes),
        }


def model_from_json(data: object, origin: str, catalogue: Catalogue | None = None) -> PoolModel:
    """Read a model file; only format, id_registers and target_implementations are required."""
    reader = DocumentReader(data, origin, MODEL_FORMAT, MODEL_KEYS)
    return PoolModel(
        id_registers=reader.registers("id_registers", required=True),
        target_implementations=read_targets(reader, "target_implementations"),
        timer_frequency_hz=reader.optional_int("timer_frequency_hz"),
        firmware_registers=reader.registers("firmware_registers"),
        gic_registers=reader.registers("gic_registers"),
        host_groups=_read_host_groups(reader),
        losses=_read_losses(reader, catalogue or load_catalogue()),
        notes=reader.strings("notes"),
    )


def _read_host_groups(reader: DocumentReader) -> tuple[HostGroup, ...]:
    """The pool's host types; a model of before types names each host with its writes."""
    if not reader.has("host_types"):
        writes = reader.mapping("host_writes")
        for host, names in writes.items():
            if not is_string_list(names):
                raise reader.fail(f"host_writes.{host}", "not a list of register names")
        return tuple(
            HostGroup(host, (host,), tuple(writes.get(host, ())))
            for host in reader.strings("hosts")
        )
    groups = []
    for index, item in enumerate(reader.items("host_types")):
        where = f"host_types[{index}]"
        hosts, writes = item.get("hosts"), item.get("host_writes", [])
        description = item.get("description")
        if not (is_string_list(hosts) and hosts and is_string_list(writes)):
            raise reader.fail(where, "needs 'hosts' and 'host_writes', lists of names")
        if not isinstance(description, str):
            raise reader.fail(f"{where}.description", "not a string")
        groups.append(HostGroup(description, tuple(hosts), tuple(writes)))
    return tuple(groups)


def _read_losses(reader: DocumentReader, catalogue: Catalogue) -> tuple[Loss, ...]:
    """The model's lost fields, each tied back to its catalogue field."""
    if not reader.has("losses"):
        return ()
    losses = []
    for index, item in enumerate(reader.items("losses")):
        where = f"losses[{index}]"
        reader.check_keys(item, where, LOSS_KEYS)
        register = catalogue.get(str(item.get("register")))
        names = [f.name for f in register.fields] if register else []
        if register is None or item.get("field") not in names:
            named = f"{item.get('register')}.{item.get('field')}"
            raise reader.fail(where, f"{named} is not catalogued")
        host_values = item.get("host_values")
        if not isinstance(host_values, dict):
            raise reader.fail(f"{where}.host_values", "not an object of host to hex value")
        losses.append(
            Loss(
                register.field(str(item["field"])),
                parse_register(item.get("pool_value"), f"{where}.pool_value", reader),
                {
                    h: parse_register(v, f"{where}.host_values.{h}", reader)
                    for h, v in host_values.items()
                },
            )
        )
    return tuple(losses)


def writable_bits(profile: HostProfile, name: str, register: Register | None) -> int:
    """The bits of ``name`` the host lets userspace change."""
    if register is not None and register.kind.writable_by_rule:
        return register.field_bits
    return profile.writable_mask(name)


def baseline(
    profiles: Sequence[HostProfile], catalogue: Catalogue | None = None, vmm: Vmm | None = None
) -> PoolModel:
    """The pool model of ``profiles``, or IncompatiblePoolError naming every blocking reason.

    Computed once per host type: messages name a type by its label. ``vmm`` decides which
    firmware and GIC registers are set (pinned) rather than carried from the start host
    (None: none is); vmm_fit refuses what it cannot write.
    """
    check_host_names(profiles)
    return baseline_of_types(group_hosts(profiles), catalogue, vmm)


def baseline_of_types(
    types: Sequence[HostType], catalogue: Catalogue | None = None, vmm: Vmm | None = None
) -> PoolModel:
    """The pool model of hosts already grouped into types (see baseline)."""
    profiles = [replace(t.profile, host=t.label) for t in types]
    types_only = [p.host for p in profiles if not p.id_registers]
    if types_only:
        raise IncompatiblePoolError(
            [
                Blocker(
                    "",
                    None,
                    f"{', '.join(types_only)}: CPU types only (a sysfs profile has no ID "
                    "registers): probe with --backend kvm on the host",
                    "types-only",
                    {host: "no ID registers" for host in types_only},
                )
            ]
        )
    model = _Baseline(profiles, catalogue or load_catalogue(), vmm).model()
    writes = model.host_writes
    groups = tuple(HostGroup(t.describe(), t.hosts, writes[t.label]) for t in types)
    return replace(model, host_groups=groups)


WRITABLE_IDENTITY_CAPABILITY = "writable_imp_id_regs"


def pin_midr(
    model: PoolModel, profiles: Sequence[HostProfile], midr: int | None = None
) -> PoolModel:
    """``model`` with the MIDR every guest sees pinned to ``midr`` (default: the first
    target's), so that it does not change across migrations.

    Only kernels with KVM_CAP_ARM_WRITABLE_IMP_ID_REGS (Linux >= 6.15) let a VMM set
    it; IncompatiblePoolError names the hosts that do not. The pinned value is one
    of the target list's MIDRs, whose errata guests apply anyway. REVIDR and AIDR
    are not pinned (no QEMU property is known to set them; /proc/cpuinfo shows neither).
    """
    pinned = model.target_implementations[0].midr if midr is None else midr
    blockers = [
        Blocker(
            IDENTITY_REGISTER,
            None,
            f"{p.host}: its KVM cannot set the guest's MIDR (no KVM_CAP_ARM_WRITABLE_IMP_ID_REGS)",
            "cannot-pin-midr",
            {p.host: "MIDR not writable"},
        )
        for p in profiles
        if not p.capabilities.get(WRITABLE_IDENTITY_CAPABILITY)
    ]
    if all(target.midr != pinned for target in model.target_implementations):
        blockers.append(
            Blocker(
                IDENTITY_REGISTER,
                None,
                f"{Midr(pinned).describe()} is not a target implementation of the pool",
                "cannot-pin-midr",
                {"model": f"{pinned:#x}"},
            )
        )
    if blockers:
        raise IncompatiblePoolError(blockers)
    note = (
        f"every guest sees {Midr(pinned).describe()} on every host (MIDR_EL1 pinned; "
        f"REVIDR and AIDR are each host's)"
    )
    return dataclasses.replace(
        model,
        id_registers={IDENTITY_REGISTER: pinned, **model.id_registers},
        notes=(*model.notes, note),
    )


def largest_pools(
    profiles: Sequence[HostProfile], catalogue: Catalogue | None = None
) -> list[tuple[str, ...]]:
    """The largest subsets of the hosts (two or more) that form a pool, by host names.

    Tried from the largest size down, so the cost grows with the number of
    subsets: callers ask only for few hosts (see MAX_HOSTS_FOR_SUBSETS).
    """
    catalogue = catalogue or load_catalogue()
    for size in range(len(profiles) - 1, 1, -1):
        found = [
            tuple(p.host for p in subset)
            for subset in itertools.combinations(profiles, size)
            if _forms_pool(subset, catalogue)
        ]
        if found:
            return found
    return []


# Past this many hosts, largest_pools is too slow for a refusal message (2^n subsets).
MAX_HOSTS_FOR_SUBSETS = 8


def _forms_pool(profiles: Sequence[HostProfile], catalogue: Catalogue) -> bool:
    try:
        baseline(profiles, catalogue)
    except IncompatiblePoolError:
        return False
    return True


def check_host_names(profiles: Sequence[HostProfile], command: str = "baseline") -> None:
    """InputError unless there are profiles, each with a host name of its own."""
    if not profiles:
        raise InputError(f"{command}: no host profiles given")
    counts = collections.Counter(p.host for p in profiles)
    twice = sorted(name for name, count in counts.items() if count > 1)
    if twice:
        raise InputError(f"{command}: host name {twice[0]!r} is given by two profiles")


class _Baseline:
    """One baseline computation: collects blockers and losses register by register."""

    def __init__(
        self, profiles: Sequence[HostProfile], catalogue: Catalogue, vmm: Vmm | None
    ) -> None:
        self.profiles = profiles
        self.catalogue = catalogue
        self.vmm = vmm
        self.blockers: list[Blocker] = []
        self.losses: list[Loss] = []
        self.kernels = {p.host: p.kernel_version for p in profiles}
        # Hosts probed without KVM: the command says once that nothing of theirs is writable.
        self.unknown_masks = {p.host for p in profiles if p.writable_masks is None}
        # Per host, the registers whose pool value differs from its own: the VMM writes them.
        self.writes: dict[str, list[str]] = {p.host: [] for p in profiles}
        # Registers no VMM sets, which every host must already agree on.
        self.requirements: list[str] = []

    def model(self) -> PoolModel:
        groups = {group: self._group(group) for group in REGISTER_GROUPS}
        frequency, notes = self._timer()
        if self.blockers:
            raise IncompatiblePoolError(self.blockers)
        if self.requirements:
            who = "no VMM sets" if self.vmm is None else f"{self.vmm.name} does not set"
            notes = (
                *notes,
                f"{who} {', '.join(self.requirements)}: they are requirements, not "
                f"writes (every host's values are ones every other host's KVM accepts; "
                f"`check` and the hook hold a new host to them)",
            )
        return PoolModel(
            id_registers=groups["id_registers"],
            firmware_registers=groups["firmware_registers"],
            gic_registers=groups["gic_registers"],
            target_implementations=TargetImplementations(
                i.target for p in self.profiles for i in p.implementations
            ),
            timer_frequency_hz=frequency,
            host_groups=tuple(
                HostGroup(host, (host,), tuple(names)) for host, names in self.writes.items()
            ),
            losses=tuple(self.losses),
            notes=notes,
        )

    def _group(self, group: str) -> dict[str, int]:
        """Every register some host reports, catalogue order first, identity ones left out."""
        reported = {name for p in self.profiles for name in getattr(p, group)}
        known = [
            n
            for n in self.catalogue
            if n in reported and self.catalogue[n].kind is not Kind.IDENTITY
        ]
        values = {}
        for name in known + sorted(reported - set(self.catalogue)):
            value = self._register(group, name)
            if value is not None:
                values[name] = value
        return values

    def _register(self, group: str, name: str) -> int | None:
        register = self.catalogue.get(name)
        values: dict[str, int] = {}
        for profile in self.profiles:
            value = _host_value(profile, group, name, register)
            if value is not None:
                values[profile.host] = value
        missing = [p.host for p in self.profiles if p.host not in values]
        if missing:
            self.blockers.append(
                Blocker(
                    name,
                    None,
                    (
                        f"{name} is not reported by {', '.join(missing)}"
                        f" (its value there is unknown)"
                    ),
                    "not-reported",
                    {**{h: f"{v:#x}" for h, v in values.items()}, **dict.fromkeys(missing, "")},
                )
            )
            return None
        result = self._undescribed(name, register, values)
        if register is not None and not set_by(self.vmm, register):
            return self._requirement(register, values, result)
        masks = {p.host: writable_bits(p, name, register) for p in self.profiles}
        for fld in register.fields if register else ():
            writable = {host: mask & fld.mask == fld.mask for host, mask in masks.items()}
            chosen = self._field(fld, {h: fld.raw(v) for h, v in values.items()}, writable)
            if chosen is not None:
                result = fld.with_raw(result, chosen)
        if register is not None:
            self._register_check(group, register, result)
        for host, value in values.items():
            if value != result:
                self.writes[host].append(name)
        return result

    def _requirement(self, register: Register, values: Mapping[str, int], result: int) -> int:
        """A register no VMM sets: each guest carries its first host's value to every other.

        So every host's value must be one every other host's KVM accepts; the
        model records the value they share (they all must share it under KVM's
        rules for these registers).
        """
        for fld in register.fields:
            raws = {h: fld.raw(v) for h, v in values.items()}
            # Judged once per distinct value and kernel (the first host of each names it):
            # a fleet has few of them, and every pair of hosts would be quadratic.
            sources = {raw: host for host, raw in reversed(raws.items())}
            destinations = {(r, self.kernels[h]): h for h, r in reversed(raws.items())}
            refusals = [
                f"{dest} refuses {src}'s {fld.describe(raw)} (its own is {fld.describe(own)})"
                for raw, src in sources.items()
                for (own, kernel), dest in destinations.items()
                if not accepts(fld, raw, own, True, kernel)
            ]
            if refusals:
                self.blockers.append(
                    Blocker(
                        register.name,
                        fld.name,
                        (
                            f"{fld.qualified_name}: {_no_vmm_sets(self.vmm, register)}, so a "
                            f"guest keeps the value of the host it starts on, and "
                            f"{'; '.join(refusals)}"
                        ),
                        "not-settable",
                        {h: f"{r:#x}" for h, r in raws.items()},
                    )
                )
            result = fld.with_raw(result, combine(fld, raws.values()))
        self.requirements.append(register.name)
        return result

    def _register_check(self, group: str, register: Register, value: int) -> None:
        for profile in self.profiles:
            refusal = register_refusal(register, value, getattr(profile, group), self.catalogue)
            if refusal:
                self.blockers.append(
                    Blocker(
                        register.name,
                        None,
                        (
                            f"{register.name} = {value:#x}"
                            f" cannot be presented on {profile.host}: {refusal}"
                        ),
                        "kvm-refuses",
                        {"model": f"{value:#x}"},
                    )
                )

    def _field(
        self, fld: Field, raws: Mapping[str, int], writable: Mapping[str, bool]
    ) -> int | None:
        chosen = _presentable_value(fld, raws, writable, self.kernels)
        if chosen is None:
            wanted = combine(fld, raws.values())
            hosts = ", ".join(
                f"{h}={fld.describe(r)}{self._why_not(fld, h, wanted, writable[h])}"
                for h, r in raws.items()
            )
            self.blockers.append(
                Blocker(
                    fld.register,
                    fld.name,
                    (
                        f"{fld.qualified_name} differs"
                        f" and no value is presentable on every host: {hosts}"
                    ),
                    "not-presentable",
                    {h: f"{r:#x}" for h, r in raws.items()},
                )
            )
            return None
        differing = {h: r for h, r in raws.items() if r != chosen}
        if differing:
            self.losses.append(Loss(fld, chosen, differing))
        return chosen

    def _why_not(self, fld: Field, host: str, wanted: int, writable: bool) -> str:
        """Why ``host`` cannot present the rule's value ``wanted`` (empty: said elsewhere)."""
        if not writable:
            return "" if host in self.unknown_masks else " (not writable)"
        if wanted in fld.refused_on(self.kernels[host]):
            return f" (writable, but {fld.refused_because}: not {fld.describe(wanted)})"
        return ""

    def _undescribed(self, name: str, register: Register | None, values: Mapping[str, int]) -> int:
        """Reserved bits (or a whole uncatalogued register) must be equal."""
        bits = reserved_bits(register)
        seen = {value & bits for value in values.values()}
        if len(seen) > 1:
            what = _undescribed_bits(name, register, bits)
            hosts = ", ".join(f"{h}={v & bits:#x}" for h, v in values.items())
            self.blockers.append(
                Blocker(
                    name,
                    None,
                    f"{what} differ and must be equal: {hosts}",
                    "must-be-equal",
                    {h: f"{v & bits:#x}" for h, v in values.items()},
                )
            )
        return min(seen)

    def _timer(self) -> tuple[int | None, tuple[str, ...]]:
        known = {
            p.host: p.timer_frequency_hz for p in self.profiles if p.timer_frequency_hz is not None
        }
        unknown = [p.host for p in self.profiles if p.timer_frequency_hz is None]
        notes = (
            (f"timer frequency unknown on {', '.join(unknown)}: check it before they join",)
            if unknown
            else ()
        )
        if len(set(known.values())) > 1:
            hosts = ", ".join(f"{h}={f} Hz" for h, f in known.items())
            self.blockers.append(
                Blocker(
                    TIMER_REGISTER,
                    None,
                    (f"timer frequencies differ ({hosts}): guests cannot migrate between them"),
                    "timer-differs",
                    {h: f"{f} Hz" for h, f in known.items()},
                )
            )
            return None, notes
        return next(iter(known.values()), None), notes


def _host_value(
    profile: HostProfile, group: str, name: str, register: Register | None
) -> int | None:
    """The host's value of ``name``; None when unknown (0 where absence means no feature)."""
    registers: Mapping[str, int] = getattr(profile, group)
    if name in registers:
        return registers[name]
    if register is not None and register.kind.absent_reads_zero:
        return 0
    return None


def _undescribed_bits(name: str, register: Register | None, bits: int) -> str:
    """How messages name the bits no field describes (the whole of an uncatalogued register)."""
    return f"bits {bits:#x} of {name}, which no field describes," if register else name


def _presentable_value(
    fld: Field,
    raws: Mapping[str, int],
    writable: Mapping[str, bool],
    kernels: Mapping[str, tuple[int, int] | None],
) -> int | None:
    """The rule's combined value if every host can present it, else any host's value that can."""
    candidates = [combine(fld, sorted(raws.values())), *sorted(set(raws.values()))]
    for candidate in candidates:
        if all(accepts(fld, candidate, raws[h], writable[h], kernels[h]) for h in raws):
            return candidate
    return None


@dataclass(frozen=True)
class CheckResult:
    """Whether a host can present a model: every problem, and notes that do not block."""

    host: str
    problems: tuple[Blocker, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check(
    model: PoolModel,
    profile: HostProfile,
    catalogue: Catalogue | None = None,
    vmm: Vmm | None = None,
) -> CheckResult:
    """Can ``profile``'s host present ``model``, with KVM's rules for userspace writes?

    ``vmm`` decides which firmware and GIC registers a guest started here carries from
    this host (None: all of them); vmm_fit judges what it cannot write.
    """
    catalogue = catalogue or load_catalogue()
    problems: list[Blocker] = []
    for implementation in profile.implementations:
        target = model.target_implementations.find(
            implementation.midr, implementation.revidr, implementation.aidr
        )
        if target is None:
            problems.append(
                Blocker(
                    IDENTITY_REGISTER,
                    None,
                    (
                        f"{Midr(implementation.midr).describe()} (REVIDR "
                        f"{_hex_or_unknown(implementation.revidr)}) of "
                        f"CPU{'s' if len(implementation.cpus) > 1 else ''} "
                        f"{format_cpus(implementation.cpus)}"
                        f" is not in the pool's target implementation list"
                    ),
                    "not-in-target-list",
                    {"host": f"{implementation.midr:#x}"},
                )
            )
    pinned = model.id_registers.get(IDENTITY_REGISTER)
    if pinned is not None and not profile.capabilities.get(WRITABLE_IDENTITY_CAPABILITY):
        problems.append(
            Blocker(
                IDENTITY_REGISTER,
                None,
                (
                    f"the model pins the guest's MIDR to {Midr(pinned).describe()}, and this "
                    f"host's KVM cannot set it (no KVM_CAP_ARM_WRITABLE_IMP_ID_REGS)"
                ),
                "cannot-pin-midr",
                {"model": f"{pinned:#x}", "host": "MIDR not writable"},
            )
        )
    for group in REGISTER_GROUPS:
        for name, wanted in getattr(model, group).items():
            register = catalogue.get(name)
            if register is not None and register.kind is Kind.IDENTITY:
                continue
            host = _host_value(profile, group, name, register)
            if host is None:
                problems.append(
                    Blocker(
                        name,
                        None,
                        f"{name} is not reported by this host",
                        "not-reported",
                        {"model": f"{wanted:#x}", "host": ""},
                    )
                )
                continue
            problems.extend(_check_register(name, register, wanted, host, profile, vmm=vmm))
            refusal = register and register_refusal(
                register, wanted, getattr(profile, group), catalogue
            )
            if refusal:
                problems.append(
                    Blocker(
                        name,
                        None,
                        f"{name} = {wanted:#x}: {refusal}",
                        "kvm-refuses",
                        {"model": f"{wanted:#x}", "host": f"{host:#x}"},
                    )
                )
    notes = _check_timer(model, profile, problems)
    return CheckResult(profile.host, tuple(problems), notes)


def _check_register(
    name: str,
    register: Register | None,
    wanted: int,
    host: int,
    profile: HostProfile,
    *,
    vmm: Vmm | None,
) -> list[Blocker]:
    problems = []
    bits = reserved_bits(register)
    if wanted & bits != host & bits:
        what = _undescribed_bits(name, register, bits)
        problems.append(
            Blocker(
                name,
                None,
                (
                    f"{what} must equal the host's: the model has {wanted & bits:#x}, "
                    f"the host {host & bits:#x}"
                ),
                "must-be-equal",
                {"model": f"{wanted & bits:#x}", "host": f"{host & bits:#x}"},
            )
        )
    writable = writable_bits(profile, name, register)
    kernel = profile.kernel_version
    for fld in register.fields if register else ():
        field_writable = writable & fld.mask == fld.mask
        requested = fld.raw(wanted)
        if register is not None and not set_by(vmm, register):
            problems.extend(_check_carried(fld, requested, fld.raw(host), vmm))
        if accepts(fld, requested, fld.raw(host), field_writable, kernel):
            continue
        if not field_writable:
            why = "the field is not writable on this host"
        elif requested in fld.refused_on(kernel):
            why = "KVM refuses this value"
        else:
            why = f"not safe under rule {fld.rule.value}"
        problems.append(
            Blocker(
                name,
                fld.name,
                (
                    f"{fld.qualified_name}: the model presents {fld.describe(requested)}, "
                    f"the host has {fld.describe(fld.raw(host))} ({why})"
                ),
                "not-safe",
                {"model": f"{requested:#x}", "host": f"{fld.raw(host):#x}"},
            )
        )
    return problems


def _check_carried(fld: Field, model: int, host: int, vmm: Vmm | None) -> list[Blocker]:
    """No VMM sets ``fld``: this host's guests carry its own value to the pool's hosts."""
    if accepts(fld, host, model, True):
        return []
    who = "no VMM sets it" if vmm is None else f"{vmm.name} cannot set it"
    return [
        Blocker(
            fld.register,
            fld.name,
            (
                f"{fld.qualified_name}: {who}, so a guest started on this host keeps "
                f"its {fld.describe(host)}, which a host of the pool (with "
                f"{fld.describe(model)}) refuses"
            ),
            "not-settable",
            {"model": f"{model:#x}", "host": f"{host:#x}"},
        )
    ]


def _check_timer(
    model: PoolModel, profile: HostProfile, problems: list[Blocker]
) -> tuple[str, ...]:
    wanted, host = model.timer_frequency_hz, profile.timer_frequency_hz
    if wanted is None:
        return ()
    if host is None:
        return (f"the host's timer frequency is unknown; the pool needs {wanted} Hz",)
    if host != wanted:
        problems.append(
            Blocker(
                TIMER_REGISTER,
                None,
                (f"timer frequency {host} Hz differs from the pool's {wanted} Hz"),
                "timer-differs",
                {"model": f"{wanted} Hz", "host": f"{host} Hz"},
            )
        )
    return ()


def set_by(vmm: Vmm | None, register: Register) -> bool:
    """Whether the VMM gives guests the pool's value of ``register`` (not their host's).

    ID registers are written where the pool needs it (vmm_fit refuses a VMM that cannot);
    firmware and GIC registers only where the VMM has a property for them.
    """
    if register.kind.set_by_vmm:
        return True
    return vmm is not None and vmm.sets(register)


def _no_vmm_sets(vmm: Vmm | None, register: Register) -> str:
    if vmm is None:
        return "no VMM sets it"
    return f"{vmm.name} cannot set it ({vmm.lacks(register)})"


def _hex_or_unknown(value: int | None) -> str:
    return "unknown" if value is None else f"{value:#x}"
