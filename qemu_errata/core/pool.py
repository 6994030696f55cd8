"""The pool model: one CPU model every host of a pool can present, and its target list.

``baseline`` computes it from host profiles, field by field; ``check`` tells
whether one host can present a given model, judging each field the way KVM
judges a userspace write of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qemu_errata.core.catalogue import Catalogue, Field, Kind, Register, load_catalogue, res0_bits
from qemu_errata.core.document import DocumentReader, hex_registers, is_string_list, parse_register
from qemu_errata.core.implementations import TargetImplementations, read_targets
from qemu_errata.core.midr import Midr
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.rules import accepts, combine, register_refusal
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
        "host_writes",
        "losses",
        "notes",
    }
)
LOSS_KEYS = frozenset({"register", "field", "pool_value", "host_values", "explanation"})
TIMER_REGISTER = "CNTFRQ_EL0"
# What check() names as the register of a host CPU outside the target list.
IDENTITY_REGISTER = "MIDR_EL1"


@dataclass(frozen=True)
class Blocker:
    """One reason a pool cannot be formed, or a host cannot present a model."""

    register: str
    field: str | None
    message: str

    def __str__(self) -> str:
        return self.message


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
class PoolModel:
    """What a pool's VMs are given: register values, target list, timer frequency."""

    id_registers: Mapping[str, int]
    target_implementations: TargetImplementations
    timer_frequency_hz: int | None = None
    firmware_registers: Mapping[str, int] = field(default_factory=dict)
    gic_registers: Mapping[str, int] = field(default_factory=dict)
    hosts: tuple[str, ...] = ()
    host_writes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    losses: tuple[Loss, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "hosts": list(self.hosts),
            "target_implementations": self.target_implementations.to_json(),
            "timer_frequency_hz": self.timer_frequency_hz,
            **{group: hex_registers(getattr(self, group)) for group in REGISTER_GROUPS},
            "host_writes": {host: list(names) for host, names in self.host_writes.items()},
            "losses": [loss.to_json() for loss in self.losses],
            "notes": list(self.notes),
        }


def model_from_json(data: object, origin: str, catalogue: Catalogue | None = None) -> PoolModel:
    """Read a model file; only format, id_registers and target_implementations are required."""
    reader = DocumentReader(data, origin, MODEL_FORMAT, MODEL_KEYS)
    host_writes = reader.mapping("host_writes")
    for host, names in host_writes.items():
        if not is_string_list(names):
            raise reader.fail(f"host_writes.{host}", "not a list of register names")
    return PoolModel(
        id_registers=reader.registers("id_registers", required=True),
        target_implementations=read_targets(reader, "target_implementations"),
        timer_frequency_hz=reader.optional_int("timer_frequency_hz"),
        firmware_registers=reader.registers("firmware_registers"),
        gic_registers=reader.registers("gic_registers"),
        hosts=reader.strings("hosts"),
        host_writes={host: tuple(names) for host, names in host_writes.items()},
        losses=_read_losses(reader, catalogue or load_catalogue()),
        notes=reader.strings("notes"),
    )


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


def baseline(profiles: Sequence[HostProfile], catalogue: Catalogue | None = None) -> PoolModel:
    """The pool model of ``profiles``, or IncompatiblePoolError naming every blocking reason."""
    _check_hosts(profiles)
    return _Baseline(profiles, catalogue or load_catalogue()).model()


def _check_hosts(profiles: Sequence[HostProfile]) -> None:
    if not profiles:
        raise InputError("baseline: no host profiles given")
    names = [p.host for p in profiles]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"baseline: host name {twice[0]!r} is given by two profiles")


class _Baseline:
    """One baseline computation: collects blockers and losses register by register."""

    def __init__(self, profiles: Sequence[HostProfile], catalogue: Catalogue) -> None:
        self.profiles = profiles
        self.catalogue = catalogue
        self.blockers: list[Blocker] = []
        self.losses: list[Loss] = []
        self.kernels = {p.host: p.kernel_version for p in profiles}
        # Per host, the registers whose pool value differs from its own: the VMM writes them.
        self.writes: dict[str, list[str]] = {p.host: [] for p in profiles}

    def model(self) -> PoolModel:
        groups = {group: self._group(group) for group in REGISTER_GROUPS}
        frequency, notes = self._timer()
        if self.blockers:
            raise IncompatiblePoolError(self.blockers)
        return PoolModel(
            id_registers=groups["id_registers"],
            firmware_registers=groups["firmware_registers"],
            gic_registers=groups["gic_registers"],
            target_implementations=TargetImplementations(
                i.target for p in self.profiles for i in p.implementations
            ),
            timer_frequency_hz=frequency,
            hosts=tuple(p.host for p in self.profiles),
            host_writes={host: tuple(names) for host, names in self.writes.items()},
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
                )
            )
            return None
        result = self._undescribed(name, register, values)
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
                    )
                )

    def _field(
        self, fld: Field, raws: Mapping[str, int], writable: Mapping[str, bool]
    ) -> int | None:
        chosen = _presentable_value(fld, raws, writable, self.kernels)
        if chosen is None:
            hosts = ", ".join(
                f"{h}={fld.describe(r)}{'' if writable[h] else ' (not writable)'}"
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
                )
            )
            return None
        differing = {h: r for h, r in raws.items() if r != chosen}
        if differing:
            self.losses.append(Loss(fld, chosen, differing))
        return chosen

    def _undescribed(self, name: str, register: Register | None, values: Mapping[str, int]) -> int:
        """Bits outside every field (or a whole uncatalogued register) must be equal."""
        bits = res0_bits(register)
        seen = {value & bits for value in values.values()}
        if len(seen) > 1:
            what = _undescribed_bits(name, register, bits)
            hosts = ", ".join(f"{h}={v & bits:#x}" for h, v in values.items())
            self.blockers.append(Blocker(name, None, f"{what} differ and must be equal: {hosts}"))
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
    model: PoolModel, profile: HostProfile, catalogue: Catalogue | None = None
) -> CheckResult:
    """Can ``profile``'s host present ``model``, with KVM's rules for userspace writes?"""
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
                        f"{_hex_or_unknown(implementation.revidr)}) of CPUs "
                        f"{_cpu_list(implementation.cpus)}"
                        f" is not in the pool's target implementation list"
                    ),
                )
            )
    for group in REGISTER_GROUPS:
        for name, wanted in getattr(model, group).items():
            register = catalogue.get(name)
            if register is not None and register.kind is Kind.IDENTITY:
                continue
            host = _host_value(profile, group, name, register)
            if host is None:
                problems.append(Blocker(name, None, f"{name} is not reported by this host"))
                continue
            problems.extend(_check_register(name, register, wanted, host, profile))
            refusal = register and register_refusal(
                register, wanted, getattr(profile, group), catalogue
            )
            if refusal:
                problems.append(Blocker(name, None, f"{name} = {wanted:#x}: {refusal}"))
    notes = _check_timer(model, profile, problems)
    return CheckResult(profile.host, tuple(problems), notes)


def _check_register(
    name: str, register: Register | None, wanted: int, host: int, profile: HostProfile
) -> list[Blocker]:
    problems = []
    bits = res0_bits(register)
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
            )
        )
    writable = writable_bits(profile, name, register)
    kernel = profile.kernel_version
    for fld in register.fields if register else ():
        field_writable = writable & fld.mask == fld.mask
        requested = fld.raw(wanted)
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
            )
        )
    return problems


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
            )
        )
    return ()


def _hex_or_unknown(value: int | None) -> str:
    return "unknown" if value is None else f"{value:#x}"


def _cpu_list(cpus: Sequence[int]) -> str:
    return ",".join(str(c) for c in cpus)
