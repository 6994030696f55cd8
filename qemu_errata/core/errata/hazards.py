"""Hazards: mitigations and workarounds a pool takes from guests on hosts that need them (pure).

Found by comparing what a guest decides in two views, with the pool model's registers:

- **A safe-listed implementation in the list** (Linux >= 6.15 guests). The kernel's MIDR-list
  helpers (``is_midr_in_range_list()``) answer "yes" when ANY target implementation matches,
  and the Spectre-v2, Spectre-v4, Spectre-BHB and KPTI *safe* lists are read with the same
  helpers: one safe-listed implementation turns the mitigation off on every host of the pool.
  A mitigation a guest enables (or asks the firmware about) with only its host's own
  implementation, and skips with the whole list because another listed implementation is on
  the safe list, is lost on that host.
- **An erratum that forces a mitigation off** (Cavium ThunderX erratum 27456: KPTI), brought
  by another listed implementation (Linux >= 6.15 guests) or by the pinned MIDR.
- **A pinned MIDR** (guests older than 6.15 read the MIDR/REVIDR they see, the pinned one): an
  erratum workaround or mitigation the guest enables with its host's own implementation and
  not with the pinned one (the pinned MIDR on a safe list, on no affected list, or bringing
  an erratum that forces it off) is lost on that host.

A host whose guests would be Vulnerable anyway (detected, not mitigated: a firmware without
the workaround) loses no protection to a safe list or a pin that makes the mitigation "not
needed", but its guests then say "Not affected" where they are Vulnerable: still a hazard,
said as such (``vulnerable_anyway``). An erratum forcing KPTI off changes nothing for them
(they run without it and say Vulnerable either way): not a hazard there.

Every guest kernel release the errata table answers for is judged; a hazard names the
releases it holds for.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence

from qemu_errata.core.board import CAVIUM_27456, QEMU_VIRT, Board
from qemu_errata.core.errata.decisions import KernelView, MitigationVerdict, kernel_view
from qemu_errata.core.errata.table import (
    RULE_OWN_CPU,
    ErrataTable,
    known_kernels,
    load_errata_table,
    series_of,
)
from qemu_errata.core.hosttypes import label_of
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import MIDR_REGISTER, REVIDR_REGISTER, Midr
from qemu_errata.core.pool.blocker import Blocker, Reason
from qemu_errata.core.pool.model import PoolModel
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import record, replace
from qemu_errata.core.vulnerabilities import KPTI, VULNERABLE_STATE

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

LOST_MITIGATION = "lost-mitigation"
LOST_WORKAROUND = "lost-workaround"
SAFE_LIST = "safe-list"  # because_of: listed implementations on the kernel's safe list
PINNED_MIDR = "pinned-midr"  # because_of: the MIDR (and REVIDR) the model pins
FORCED_OFF = "forced-off"  # because_of: listed implementations whose erratum forces it off
_NOT_NEEDED = "not needed"
_VULNERABLE_ANYWAY = "guests there are Vulnerable without it anyway, and say Not affected instead"
# Each cause in a few words naming no host (plan groups the reasons of many pairs by them).
CAUSE_WORDS = {
    SAFE_LIST: "a CPU on the kernel's safe list beside one that needs it",
    FORCED_OFF: "an erratum of a listed CPU forces it off beside one that needs it",
    PINNED_MIDR: "the pinned MIDR takes it from guests older than 6.15",
}


@record
class Hazard:
    """A mitigation or workaround guests of the pool skip on hosts that need it."""

    kind: str  # LOST_MITIGATION or LOST_WORKAROUND
    name: str  # the mitigation's id ("Spectre-BHB"), or the erratum's ("ARM erratum 1418040")
    needed_on: tuple[TargetImplementation, ...]  # the target implementations that need it
    because_of: tuple[TargetImplementation, ...]  # safe-listed implementations, or the pin
    cause: str  # SAFE_LIST, FORCED_OFF or PINNED_MIDR
    guest_kernels: tuple[str, ...]  # "7.2" (every release of a series) or "6.12.94-6.12.111"
    forced_by: str = ""  # the erratum that forces it off (FORCED_OFF, or a pin that does)
    vulnerable_anyway: bool = False  # guests there are Vulnerable without it, say Not affected

    def describe(self, hosts: Hosts | None = None) -> str:
        """``Spectre-BHB LOST on Arm Neoverse-N1 r4p1: Arm Cortex-A53 r0p4 is on the kernel's
        safe list (Linux 7.2, 7.3 guests skip it on every host)``."""
        needed = ", ".join(_named(t, hosts) for t in self.needed_on)
        kernels = f"Linux {', '.join(self.guest_kernels)} guests"
        if self.cause == PINNED_MIDR:
            pinned = f"the pinned MIDR {Midr(self.because_of[0].midr).name()}"
            why = (
                f"{pinned} brings {self.forced_by}, which forces it off for {kernels}"
                if self.forced_by
                else f"{pinned} hides it from {kernels}"
            )
        elif self.cause == FORCED_OFF:
            listed = ", ".join(Midr(t.midr).name() for t in self.because_of)
            why = f"an erratum of the listed {listed} forces it off ({kernels}, on every host)"
        else:
            safe = ", ".join(Midr(t.midr).name() for t in self.because_of)
            verb = "is" if len(self.because_of) == 1 else "are"
            why = f"{safe} {verb} on the kernel's safe list ({kernels} skip it on every host)"
        anyway = f"; {_VULNERABLE_ANYWAY}" if self.vulnerable_anyway else ""
        return f"{self.name} LOST on {needed}: {why}{anyway}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "mitigation": self.name,
            "needed_on": [_implementation_json(t) for t in self.needed_on],
            "because_of": [_implementation_json(t) for t in self.because_of],
            "cause": self.cause,
            "guest_kernels": list(self.guest_kernels),
        }


# The host profiles of each target implementation, where known (a model read alone has none):
# they name the hosts, and their own registers tell whether a host really needs a mitigation.
Hosts = Mapping[TargetImplementation, Sequence[HostProfile]]


def hosts_of(profiles: Iterable[HostProfile]) -> dict[TargetImplementation, list[HostProfile]]:
    """The profiles of each implementation of ``profiles``."""
    hosts: dict[TargetImplementation, list[HostProfile]] = {}
    for profile in profiles:
        for implementation in profile.implementations:
            hosts.setdefault(implementation.target, []).append(profile)
    return hosts


def pool_hazards(
    targets: Sequence[TargetImplementation],
    registers: Mapping[str, int],
    tables: Sequence[ErrataTable] | None = None,
    hosts: Hosts | None = None,
    evident_only: bool = False,
    *,
    board: Board = QEMU_VIRT,
) -> tuple[Hazard, ...]:
    """The hazards of a pool with ``targets`` whose guests see ``registers`` (ID and firmware
    registers; a pinned ``MIDR_EL1``/``REVIDR_EL1`` among them), for every release of
    ``tables`` (default: every guest kernel release known), guests on ``board``: its KASLR
    seed forces KPTI on whatever the safe list says, and ``nokaslr`` takes that away.

    A mitigation is needed on a host when its guest would take it with only that host's
    implementation, judged on ``registers``, and, where ``hosts`` has the host's profile, on
    its own registers too: a pool that hides CSV3 makes a guest on Neoverse-N1 assume
    Meltdown, which the CPU itself rules out. Without its profile a host needs it as its
    guest would have it, or with ``evident_only`` (the hook: it must not refuse a pool
    ``baseline`` accepted) only where an affected list or an ID field decides it.
    """
    if len(targets) < 2 and MIDR_REGISTER not in registers:
        # Its guests' lists hold their own implementation alone: nothing is lost (_losses),
        # and every release's table would be resolved for nothing (check's start-up).
        return ()
    tables = _tables() if tables is None else tables
    pool = _Pool(tuple(targets), registers, hosts or {}, evident_only, board)
    found: dict[tuple[str, str, str, tuple[TargetImplementation, ...], str, bool], _Found] = {}
    for table in tables:
        for kind, name, needed_on, because_of, cause, forced_by, anyway in _losses(table, pool):
            key = (kind, name, cause, because_of, forced_by, anyway)
            found.setdefault(key, _Found()).add(needed_on, table.kernel)
    order = [*_known_kernels(), *(t.kernel for t in tables if t.kernel not in _known_kernels())]
    return tuple(
        Hazard(
            kind,
            name,
            tuple(sorted(f.needed_on)),
            because_of,
            cause,
            _kernels(f.releases, order),
            forced_by,
            anyway,
        )
        for (kind, name, cause, because_of, forced_by, anyway), f in found.items()
    )


def model_hazards(
    model: PoolModel,
    hosts: Hosts | None = None,
    evident_only: bool = False,
    tables: Sequence[ErrataTable] | None = None,
    board: Board = QEMU_VIRT,
) -> tuple[Hazard, ...]:
    """The hazards of a pool model (whatever it accepts); see pool_hazards."""
    registers = {**model.id_registers, **model.firmware_registers}
    targets = list(model.target_implementations)
    return pool_hazards(targets, registers, tables, hosts, evident_only, board=board)


# The functions below that take a model's ``hazards`` find them (model_hazards) when not
# given: a caller that needs them more than once (plan, for every candidate pool) passes
# them, found once. What a model accepts does not change its hazards.


def accepting(
    model: PoolModel,
    names: Iterable[str],
    hosts: Hosts | None = None,
    hazards: Sequence[Hazard] | None = None,
) -> PoolModel:
    """``model`` accepting those of ``names`` that name one of its hazards (as spelled there)."""
    wanted = {name.casefold() for name in names}
    if not wanted:
        return replace(model, accepted_lost_mitigations=())
    found = model_hazards(model, hosts) if hazards is None else hazards
    spelled = [h.name for h in found if h.name.casefold() in wanted]
    return replace(model, accepted_lost_mitigations=tuple(dict.fromkeys(spelled)))


def unaccepted(hazards: Iterable[Hazard], accepted: Iterable[str]) -> tuple[Hazard, ...]:
    """The hazards not accepted by name (names compare case-insensitively)."""
    names = {name.casefold() for name in accepted}
    return tuple(h for h in hazards if h.name.casefold() not in names)


def accepted_hazards(
    model: PoolModel, hosts: Hosts | None = None, hazards: Sequence[Hazard] | None = None
) -> tuple[Hazard, ...]:
    """The hazards of ``model`` it accepts by name."""
    names = {name.casefold() for name in model.accepted_lost_mitigations}
    if not names:
        return ()
    found = model_hazards(model, hosts) if hazards is None else hazards
    return tuple(h for h in found if h.name.casefold() in names)


def hazard_names() -> frozenset[str]:
    """Every name a hazard can have: the mitigations' and errata's ids of every release."""
    return frozenset(
        name
        for table in _tables()
        for name in [*(m.id for m in table.mitigations), *(e.id for e in table.errata)]
    )


def hazard_refusals(
    model: PoolModel, hosts: Hosts | None = None, hazards: Sequence[Hazard] | None = None
) -> list[Blocker]:
    """A refusal for each hazard of ``model`` it does not accept by name."""
    found = model_hazards(model, hosts) if hazards is None else hazards
    return hazard_blockers(unaccepted(found, model.accepted_lost_mitigations), hosts)


def hazard_blockers(hazards: Iterable[Hazard], hosts: Hosts | None = None) -> list[Blocker]:
    """One refusal per hazard: what is lost where, and the option that accepts it."""
    return [
        Blocker(
            MIDR_REGISTER,
            None,
            f"{hazard.describe(hosts)}"
            f"{'' if hazard.vulnerable_anyway else '; guests there run without it'}: "
            f"accept that by name with {accept_option(hazard.name)}",
            Reason.LOST_MITIGATION,
            {
                **{_label(t, hosts): f"{t.midr:#x}" for t in hazard.needed_on},
                "mitigation": hazard.name,
                "cause": hazard.cause,
            },
        )
        for hazard in hazards
    ]


def accept_option(name: str) -> str:
    """The option that accepts a hazard, as an operator types it."""
    import shlex  # noqa: PLC0415 (start-up: only for a refusal)

    return f"--accept-lost-mitigation {shlex.quote(name)}"


def needed_by(hazards: Iterable[Hazard], host: HostProfile) -> tuple[Hazard, ...]:
    """The hazards that take something from ``host`` (one of its implementations needs it)."""
    own = {i.target for i in host.implementations}
    return tuple(h for h in hazards if own & set(h.needed_on))


@record
class Exposure:
    """What guests on some hosts take with each host's implementation alone, and what those
    implementations take from every guest of a list naming them (a safe list names them, or
    an erratum of theirs forces it off): (release, mitigation) pairs of the guest kernels
    that read a target list. Hosts of equal registers lose a mitigation together exactly
    when one's needs meet what another takes, so this compares pools pairwise instead of
    judging every union."""

    needs: frozenset[tuple[str, str]]
    takes: frozenset[tuple[str, str]]

    def clashes(self, other: Exposure) -> bool:
        return bool(self.needs & other.takes or self.takes & other.needs)

    def __or__(self, other: Exposure) -> Exposure:
        return Exposure(self.needs | other.needs, self.takes | other.takes)


def exposure(host: HostProfile) -> Exposure:
    """The Exposure of a host's implementations, judged on its own registers."""
    registers = _own_registers(host)
    midrs = tuple(sorted({i.midr for i in host.implementations}))
    return _exposure(midrs, tuple(sorted(registers.items())))


@functools.lru_cache(maxsize=1024)
def _exposure(midrs: tuple[int, ...], registers: tuple[tuple[str, int], ...]) -> Exposure:
    targets = tuple(TargetImplementation(midr, None, None) for midr in midrs)
    pool = _Pool(targets, dict(registers), {}, False, QEMU_VIRT)
    needs: set[tuple[str, str]] = set()
    takes: set[tuple[str, str]] = set()
    for table in _tables():
        if table.target_list_rule == RULE_OWN_CPU:
            continue
        forcing, _ = _forcing_kpti_off(table, pool)
        for target in targets:
            for verdict in pool.alone(table, target):
                key = (table.kernel, verdict.mitigation.id)
                if target.midr in forcing and verdict.mitigation.capability == KPTI:
                    takes.add(key)  # and its own guests run without KPTI anyway
                elif verdict.state != _NOT_NEEDED:
                    needs.add(key)
                elif target in verdict.implementations:  # its safe list names it
                    takes.add(key)
    return Exposure(frozenset(needs), frozenset(takes))


def _own_registers(profile: HostProfile) -> dict[str, int]:
    """A host's ID and firmware registers but its identity (each host's own: not pooled)."""
    registers = {**profile.id_registers, **profile.firmware_registers}
    for identity in (MIDR_REGISTER, REVIDR_REGISTER):
        registers.pop(identity, None)
    return registers


def _label(target: TargetImplementation, hosts: Hosts | None) -> str:
    named = sorted(p.host for p in (hosts or {}).get(target, ()))
    return label_of(named) if named else Midr(target.midr).name()


def _named(target: TargetImplementation, hosts: Hosts | None) -> str:
    named = sorted(p.host for p in (hosts or {}).get(target, ()))
    on = f" ({label_of(named)})" if named else ""
    return f"{Midr(target.midr).name()}{on}"


def _implementation_json(target: TargetImplementation) -> dict[str, Any]:
    return {**target.to_json(), "name": Midr(target.midr).name()}


# _Found and _Pool are plain classes: nothing compares, hashes or prints them, and a record
# costs every command that imports this module (check) its definition.
class _Found:
    __slots__ = ("needed_on", "releases")

    def __init__(self) -> None:
        self.needed_on: set[TargetImplementation] = set()
        self.releases: set[str] = set()

    def add(self, target: TargetImplementation, release: str) -> None:
        self.needed_on.add(target)
        self.releases.add(release)


# kind, name, the implementation that needs it, because_of, cause, forced_by, and whether
# its guests are Vulnerable anyway
_Loss = tuple[str, str, TargetImplementation, tuple[TargetImplementation, ...], str, str, bool]


class _Pool:
    __slots__ = ("board", "evident_only", "hosts", "registers", "seen", "targets")

    def __init__(
        self,
        targets: tuple[TargetImplementation, ...],
        registers: Mapping[str, int],  # what its guests see
        hosts: Hosts,
        evident_only: bool,
        board: Board,  # the guests' board and command line
    ) -> None:
        self.board = board
        self.targets = targets
        self.registers = registers
        self.hosts = hosts
        self.evident_only = evident_only
        # Verdicts depend on the MIDR alone (no mitigation list reads REVIDR): one view per MIDR.
        self.seen: dict[tuple[str, int, int], tuple[MitigationVerdict, ...]] = {}

    def alone(
        self, table: ErrataTable, target: TargetImplementation, profile: HostProfile | None = None
    ) -> tuple[MitigationVerdict, ...]:
        """The mitigations a guest takes with ``target`` alone: on the registers the pool's
        guests see, or on ``profile``'s own."""
        key = (table.kernel, target.midr, id(profile))
        if key not in self.seen:
            registers = self.registers if profile is None else _own_registers(profile)
            self.seen[key] = _mitigations(table, [target], registers, self.board)
        return self.seen[key]

    def needs(
        self, table: ErrataTable, target: TargetImplementation, alone: MitigationVerdict
    ) -> bool:
        """Whether a host of ``target`` needs what a guest there takes with ``target`` alone:
        unless a known host profile's own registers rule it out (a host's own CSV2/CSV3 the
        pool hides, say); without a profile, if ``evident_only``, only when a list names
        ``target`` or an ID field enables it (not the kernel's default for a CPU no list or
        field decides, which a field the pool hides may have caused)."""
        profiles = self.hosts.get(target, ())
        if not profiles:
            return not self.evident_only or _evident(alone, self.registers)
        return any(
            verdict.mitigation.id == alone.mitigation.id and verdict.state != _NOT_NEEDED
            for profile in profiles
            for verdict in self.alone(table, target, profile)
        )


def _evident(verdict: MitigationVerdict, registers: Mapping[str, int]) -> bool:
    """A verdict an affected list or an ID field enabling the mitigation decided."""
    enabled_if = verdict.mitigation.enabled_if
    return bool(verdict.implementations) or bool(enabled_if and enabled_if.holds(registers))


def _mitigations(
    table: ErrataTable,
    cpus: Sequence[TargetImplementation],
    registers: Mapping[str, int],
    board: Board,
) -> tuple[MitigationVerdict, ...]:
    # plan asks each candidate pool, and candidates share most views: at 100 types a third
    # of its time went to asking the same ones again.
    return _remembered_mitigations(_Same(table), tuple(cpus), tuple(registers.items()), board)


class _Same:
    """A table as a cache key by identity: hashing a whole errata table would cost more than
    the view. The key holds the table, so its id is not reused while the entry lives."""

    __slots__ = ("table",)

    def __init__(self, table: ErrataTable) -> None:
        self.table = table

    def __hash__(self) -> int:
        return id(self.table)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.table is self.table


@functools.lru_cache(maxsize=4096)
def _remembered_mitigations(
    table: _Same,
    cpus: tuple[TargetImplementation, ...],
    registers: tuple[tuple[str, int], ...],
    board: Board,
) -> tuple[MitigationVerdict, ...]:
    view = kernel_view(replace(table.table, errata=()), cpus, dict(registers), board=board)
    return view.mitigations


def _losses(table: ErrataTable, pool: _Pool) -> list[_Loss]:
    if table.target_list_rule != RULE_OWN_CPU:
        return _safe_listed(table, pool) + _forced_off(table, pool) if len(pool.targets) > 1 else []
    pinned = pool.registers.get(MIDR_REGISTER)
    return [] if pinned is None else _pinned(table, pool, pinned)


def _safe_listed(table: ErrataTable, pool: _Pool) -> list[_Loss]:
    """Mitigations a guest needs with its host's implementation alone and skips with the
    list because another listed implementation is safe-listed (adding implementations to a
    list only ever adds errata workarounds: only the safe lists take away)."""
    models = list({t.midr: t for t in pool.targets}.values())  # the lists read MIDRs only
    safe_listed = [
        tuple(t for t in pool.targets if t.midr in {i.midr for i in verdict.implementations})
        if verdict.state == _NOT_NEEDED
        else ()
        for verdict in _mitigations(table, models, pool.registers, pool.board)
    ]
    losses: list[_Loss] = []
    for target in pool.targets:
        for own, safe in zip(pool.alone(table, target), safe_listed, strict=True):
            name = own.mitigation.id
            lost = own.state != _NOT_NEEDED and safe and target not in safe
            if lost and pool.needs(table, target, own):
                anyway = own.state == VULNERABLE_STATE
                losses.append((LOST_MITIGATION, name, target, safe, SAFE_LIST, "", anyway))
    return losses


def _forced_off(table: ErrataTable, pool: _Pool) -> list[_Loss]:
    """KPTI a guest takes with its host's implementation alone and that an erratum of
    another listed implementation forces off for every guest: Cavium ThunderX erratum
    27456 (the kernel never unmaps itself at EL0 once its workaround is detected)."""
    forcing, forced_by = _forcing_kpti_off(table, pool)
    if not forcing:
        return []
    because = tuple(t for t in pool.targets if t.midr in forcing)
    losses: list[_Loss] = []
    for target in pool.targets:
        if target.midr in forcing:
            continue  # its own guests run without KPTI anyway
        for own in pool.alone(table, target):
            kpti = own.mitigation.capability == KPTI and _taken(own)
            if kpti and pool.needs(table, target, own):
                name = own.mitigation.id
                losses.append(
                    (LOST_MITIGATION, name, target, because, FORCED_OFF, forced_by, False)
                )
    return losses


def _forcing_kpti_off(table: ErrataTable, pool: _Pool) -> tuple[set[int], str]:
    """The MIDRs of the pool's implementations that bring an erratum forcing KPTI off
    (Cavium erratum 27456) into a list naming them, and those errata's ids."""
    rows = tuple(e for e in table.errata if e.capability == CAVIUM_27456)
    if not rows:
        return set(), ""
    # Only the forcing erratum's rows: a whole view (every erratum and mitigation) for each
    # candidate pool doubled plan's time.
    alone = replace(table, errata=rows, mitigations=())
    models = list({t.midr: t for t in pool.targets}.values())
    listed = kernel_view(alone, models, pool.registers, board=pool.board)
    return {i.midr for e in listed.errata for i in e.implementations}, _forcing_errata(listed)


def _pinned(table: ErrataTable, pool: _Pool, pinned: int) -> list[_Loss]:
    """What a guest reading the pinned MIDR (and its host's REVIDR unless the model pins
    that too) skips that it enables with each host's own implementation: as with a list,
    what the pinned MIDR makes not needed (a safe list, no affected list) and KPTI an
    erratum it brings forces off (on a host whose own MIDR does not bring that erratum)."""
    registers = pool.registers
    losses: list[_Loss] = []
    for target in pool.targets:
        seen = TargetImplementation(pinned, registers.get(REVIDR_REGISTER, target.revidr), None)
        pinned_view = kernel_view(table, [seen], registers, board=pool.board)
        kept = _workaround_keys(pinned_view)
        own = kernel_view(table, [target], registers, board=pool.board)
        for enabled in own.errata:
            key = enabled.erratum.capability or enabled.erratum.id
            if enabled.no_effect is None and key not in kept:
                name = enabled.erratum.id
                losses.append((LOST_WORKAROUND, name, target, (seen,), PINNED_MIDR, "", False))
        forced_by = "" if _forcing_errata(own) else _forcing_errata(pinned_view)
        for mine, theirs in zip(own.mitigations, pinned_view.mitigations, strict=True):
            forced = forced_by if mine.mitigation.capability == KPTI and _taken(mine) else ""
            skipped = theirs.state == _NOT_NEEDED or bool(forced)
            if mine.state != _NOT_NEEDED and skipped and pool.needs(table, target, mine):
                anyway = not forced and mine.state == VULNERABLE_STATE
                name = mine.mitigation.id
                losses.append((LOST_MITIGATION, name, target, (seen,), PINNED_MIDR, forced, anyway))
    return losses


def _taken(verdict: MitigationVerdict) -> bool:
    """Whether a guest takes the mitigation (or may: the firmware's answer decides), not
    not needed nor Vulnerable anyway."""
    return verdict.state not in (_NOT_NEEDED, VULNERABLE_STATE)


def _forcing_errata(view: KernelView) -> str:
    """The errata of ``view`` that force KPTI off (Cavium erratum 27456), if any."""
    return ", ".join(e.erratum.id for e in view.errata if e.erratum.capability == CAVIUM_27456)


def _workaround_keys(view: KernelView) -> set[str]:
    """The capabilities (or ids) of the errata ``view`` enables: one workaround each."""
    return {e.erratum.capability or e.erratum.id for e in view.errata}


def _kernels(releases: set[str], order: Sequence[str]) -> tuple[str, ...]:
    """``releases`` as series ("7.2": every known release of it) or runs of consecutive known
    releases ("6.12.94-6.12.111"), oldest first (``order``: every release known)."""
    spans: list[list[str]] = []
    for release in order:
        if release not in releases:
            continue
        last = spans[-1][-1] if spans else None
        if (
            last is not None
            and series_of(last) == series_of(release)
            and _next(order, last) == release
        ):
            spans[-1].append(release)
        else:
            spans.append([release])
    named = []
    for span in spans:
        series = [r for r in order if series_of(r) == series_of(span[0])]
        if span == series:
            named.append(series_of(span[0]))
        else:
            named.append(span[0] if len(span) == 1 else f"{span[0]}-{span[-1]}")
    return tuple(named)


@functools.cache
def _known_kernels() -> tuple[str, ...]:
    return known_kernels()


def _tables() -> list[ErrataTable]:
    """Every known guest kernel release's table."""
    return [load_errata_table(release) for release in _known_kernels()]


def _next(order: Sequence[str], release: str) -> str | None:
    index = order.index(release) + 1
    return order[index] if index < len(order) else None
