"""The baseline: the pool model of host profiles, computed field by field.

Each field gets the value the rule combines, or any host's value every host
can present; anything else is a Blocker. Also the MIDR pin and the largest
subsets of hosts that form a pool.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Mapping, Sequence

from qemu_errata.core.catalogue import Catalogue, Field, Register, load_catalogue, reserved_bits
from qemu_errata.core.hosttypes import HostType, group_hosts
from qemu_errata.core.implementations import TargetImplementations
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool.blocker import Blocker, Reason
from qemu_errata.core.pool.host import (
    IDENTITY_REGISTER,
    TIMER_REGISTER,
    WRITABLE_IDENTITY_CAPABILITY,
    host_value,
    no_vmm_sets,
    set_by,
    undescribed_bits,
    writable_bits,
)
from qemu_errata.core.pool.model import HostGroup, Loss, PoolModel
from qemu_errata.core.pool_namespace import REGISTER_GROUPS
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import record, replace
from qemu_errata.core.registers_table import Kind
from qemu_errata.core.rules import accepts, combine, register_refusal
from qemu_errata.core.vmms import Vmm
from qemu_errata.errors import IncompatiblePoolError, InputError


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
                    "registers): probe it with its KVM on the host",
                    Reason.TYPES_ONLY,
                    {host: "no ID registers" for host in types_only},
                )
            ]
        )
    model = _Baseline(profiles, catalogue or load_catalogue(), vmm).model()
    writes = model.host_writes
    groups = tuple(HostGroup(t.describe(), t.hosts, writes[t.label]) for t in types)
    return replace(model, host_groups=groups)


@record
class RegisterOutcome:
    """One register of a baseline alone: its pool value, or why there is none."""

    value: int | None  # None when blocked
    blockers: tuple[Blocker, ...]
    writes: frozenset[str]  # hosts whose own value differs: the VMM writes it there
    losses: tuple[Loss, ...]


def pool_registers(profiles: Sequence[HostProfile], group: str, catalogue: Catalogue) -> list[str]:
    """The registers of ``group`` a pool of ``profiles`` decides: every one some host
    reports, catalogue order first, identity ones (MIDR, REVIDR, AIDR) left out."""
    reported = {name for p in profiles for name in getattr(p, group)}
    known = [n for n in catalogue if n in reported and catalogue[n].kind is not Kind.IDENTITY]
    return known + sorted(reported - set(catalogue))


def register_outcome(
    profiles: Sequence[HostProfile],
    group: str,
    name: str,
    catalogue: Catalogue,
    vmm: Vmm | None = None,
) -> RegisterOutcome:
    """What baseline decides for ``name`` of ``group`` alone (registers are decided apart,
    so plan judges a set of types register by register, each register once per distinct
    set of values)."""
    computation = _Baseline(profiles, catalogue, vmm)
    value = computation._register(group, name)
    writes = frozenset(host for host, names in computation.writes.items() if name in names)
    blocked = tuple(computation.blockers)
    return RegisterOutcome(None if blocked else value, blocked, writes, tuple(computation.losses))


def pin_midr(
    model: PoolModel, profiles: Sequence[HostProfile], midr: int | None = None
) -> PoolModel:
    """``model`` with the MIDR every guest sees pinned to ``midr`` (default: that of the first
    profile given, its first CPU type), so that it does not change across migrations.

    Only kernels with KVM_CAP_ARM_WRITABLE_IMP_ID_REGS (Linux >= 6.15) let a VMM set
    it; IncompatiblePoolError names the hosts that do not. The pinned value is one
    of the target list's MIDRs, whose errata guests apply anyway. REVIDR and AIDR
    are not pinned (no QEMU property is known to set them; /proc/cpuinfo shows neither).
    """
    pinned = profiles[0].implementations[0].midr if midr is None else midr
    blockers = [
        Blocker(
            IDENTITY_REGISTER,
            None,
            f"{p.host}: its KVM cannot set the guest's MIDR (no KVM_CAP_ARM_WRITABLE_IMP_ID_REGS)",
            Reason.CANNOT_PIN_MIDR,
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
                Reason.CANNOT_PIN_MIDR,
                {"model": f"{pinned:#x}"},
            )
        )
    if blockers:
        raise IncompatiblePoolError(blockers)
    note = (
        f"every guest sees {Midr(pinned).describe()} on every host (MIDR_EL1 pinned; "
        f"REVIDR and AIDR are each host's)"
    )
    return replace(
        model,
        id_registers={IDENTITY_REGISTER: pinned, **model.id_registers},
        notes=(*model.notes, note),
    )


def largest_pools(
    profiles: Sequence[HostProfile], forms_pool: Callable[[Sequence[HostProfile]], bool]
) -> list[tuple[str, ...]]:
    """The largest subsets of the hosts (two or more) that form a pool, by host names.

    ``forms_pool`` decides as the refused command does (its VMM, the mitigations it
    accepts): a subset named here must be one that command would accept.
    Tried from the largest size down, so the cost grows with the number of
    subsets: callers ask only for few hosts (see MAX_HOSTS_FOR_SUBSETS).
    """
    for size in range(len(profiles) - 1, 1, -1):
        found = [
            tuple(p.host for p in subset)
            for subset in itertools.combinations(profiles, size)
            if forms_pool(subset)
        ]
        if found:
            return found
    return []


# Past this many hosts, largest_pools is too slow for a refusal message (2^n subsets).
MAX_HOSTS_FOR_SUBSETS = 8


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
        """Every register some host reports, in pool_registers' order."""
        values = {}
        for name in pool_registers(self.profiles, group, self.catalogue):
            value = self._register(group, name)
            if value is not None:
                values[name] = value
        return values

    def _register(self, group: str, name: str) -> int | None:
        register = self.catalogue.get(name)
        values: dict[str, int] = {}
        for profile in self.profiles:
            value = host_value(profile, group, name, register)
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
                    Reason.NOT_REPORTED,
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
                            f"{fld.qualified_name}: {no_vmm_sets(self.vmm, register)}, so a "
                            f"guest keeps the value of the host it starts on, and "
                            f"{'; '.join(refusals)}"
                        ),
                        Reason.NOT_SETTABLE,
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
                        Reason.KVM_REFUSES,
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
                    Reason.NOT_PRESENTABLE,
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
            what = undescribed_bits(name, register, bits)
            hosts = ", ".join(f"{h}={v & bits:#x}" for h, v in values.items())
            self.blockers.append(
                Blocker(
                    name,
                    None,
                    f"{what} differ and must be equal: {hosts}",
                    Reason.MUST_BE_EQUAL,
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
                    Reason.TIMER_DIFFERS,
                    {h: f"{f} Hz" for h, f in known.items()},
                )
            )
            return None, notes
        return next(iter(known.values()), None), notes


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
