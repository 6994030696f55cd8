"""What a kernel enables for a set of CPUs under the kernel's matching rules (see the package)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qemu_errata.core.board import CAVIUM_27456, QEMU_VIRT, Board, kpti_forced
from qemu_errata.core.errata.table import (
    FROM_MIDR,
    RULE_ANY_IN_RANGE,
    RULE_OWN_CPU,
    CpuRange,
    ErrataTable,
    Erratum,
    Mitigation,
)
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import MIDR_REGISTER, REVIDR_REGISTER
from qemu_errata.core.record import record, replace
from qemu_errata.core.vulnerabilities import (
    DETECTED,
    ENABLED,
    FIRMWARE,
    KPTI,
    NOT_NEEDED,
    VULNERABLE_STATE,
    guest_lines,
    load_guest_words,
)


@record
class Enabled:
    """An erratum a kernel enables, and the implementations that bring it."""

    erratum: Erratum
    implementations: tuple[TargetImplementation, ...]
    own_hosts_only: bool  # matched against the MIDR the CPU reads: only on those hosts
    no_effect: str | None  # why it changes nothing under these registers, if it does not
    only_some_kernels: str | None = None  # why only some kernels of the version carry it


@record
class Suppressed:
    """An erratum whose MIDR matches but whose required ID field rules it out."""

    erratum: Erratum
    implementations: tuple[TargetImplementation, ...]
    reason: str


@record
class MitigationVerdict:
    """What a kernel does about one mitigation: state, and which implementations decided it.

    state: "enabled" (detected and effective), "vulnerable" (detected, logged, and not
    effective: the guest says Vulnerable), "detected" (logged; whether effective, a hypervisor
    answer the input does not hold decides), "not needed", or "firmware" (a hypervisor answer
    the input does not hold decides whether it is detected at all). ``unaffected``: the
    kernel counts its CPUs unaffected whatever it enabled (KPTI forced on by KASLR on
    Meltdown-safe CPUs).
    """

    mitigation: Mitigation
    state: str
    implementations: tuple[TargetImplementation, ...]
    loop: int | None
    reason: str
    unaffected: bool = False

    @property
    def logged(self) -> bool:
        """Whether the kernel detects (and logs) its capability."""
        return self.state in (ENABLED, VULNERABLE_STATE, DETECTED)


@record
class KernelView:
    """What one kernel enables for the CPUs it matches against."""

    errata: tuple[Enabled, ...]
    suppressed: tuple[Suppressed, ...]
    mitigations: tuple[MitigationVerdict, ...]

    def expected_log(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The "CPU features: detected: <description>" lines every such kernel prints, and
        those only some print (a mitigation the hypervisor's firmware answer decides, an
        erratum matched only on its own hosts, carried only by the later point releases of the
        guest's series, or that some distributions build without), each once, in table order:
        what a booted guest's log is compared with, name for name."""
        everywhere = [e for e in self.errata if not _only_some(e)]
        certain = [e.erratum.log for e in everywhere]
        certain += [v.mitigation.log for v in self.mitigations if v.logged]
        possible = [e.erratum.log for e in self.errata if _only_some(e)]
        possible += [v.mitigation.log for v in self.mitigations if v.state == FIRMWARE]
        unique = tuple(dict.fromkeys(line for line in certain if line))
        return unique, tuple(dict.fromkeys(p for p in possible if p and p not in unique))

    def vulnerabilities(self) -> dict[str, str | None]:
        """What the guest prints in each file of /sys/devices/system/cpu/vulnerabilities that
        its arm64 code writes (core.vulnerabilities); None: a hypervisor answer decides."""
        states = {v.mitigation.capability: v.state for v in self.mitigations}
        kpti = [v for v in self.mitigations if v.mitigation.capability == KPTI]
        safe = bool(kpti) and (kpti[0].state == NOT_NEEDED or kpti[0].unaffected)
        return guest_lines(states, safe)


def _only_some(enabled: Enabled) -> bool:
    return enabled.own_hosts_only or enabled.only_some_kernels is not None


def kernel_view(
    table: ErrataTable,
    cpus: Sequence[TargetImplementation],
    id_registers: Mapping[str, int],
    at_el2: bool = False,
    board: Board = QEMU_VIRT,
) -> KernelView:
    """What a kernel matching ``cpus`` enables (a guest on ``board`` unless ``at_el2``).

    ``cpus`` is the whole target list for a guest of Linux >= 6.15, or the one
    implementation an older guest (or one host CPU) reads; an erratum is enabled
    when ANY of them is affected.
    """
    enabled: list[Enabled] = []
    suppressed: list[Suppressed] = []
    for erratum in table.errata:
        if not _considered(erratum, at_el2):
            continue
        rule = RULE_OWN_CPU if at_el2 else table.target_list_rule
        bringing, own_hosts_only = _bringing(erratum, cpus, rule)
        if not bringing:
            continue
        refusal = next((t for t in erratum.requires if t.holds(id_registers) is False), None)
        if refusal is not None:
            suppressed.append(Suppressed(erratum, bringing, refusal.explain(id_registers)))
            continue
        enabled.append(
            Enabled(
                erratum,
                bringing,
                own_hosts_only,
                _no_effect(erratum, id_registers),
                None if at_el2 else _only_some_builds(erratum, table.kernel),
            )
        )
    verdicts = [_mitigation_verdict(m, cpus, id_registers) for m in table.mitigations]
    if not at_el2:
        cavium = any(e.erratum.capability == CAVIUM_27456 for e in enabled)
        verdicts = _on_board(verdicts, id_registers, board, (table.kaslr_kpti_unless, cavium))
    return KernelView(tuple(enabled), tuple(suppressed), tuple(verdicts))


def _considered(erratum: Erratum, at_el2: bool) -> bool:
    """A host kernel: every CPU erratum; a guest: what it detects."""
    return erratum.matched_by in FROM_MIDR if at_el2 else erratum.guest_detects


def _only_some_builds(erratum: Erratum, kernel: str) -> str | None:
    """Why not every Debian build of this kernel carries the workaround, if not."""
    if erratum.left_out_by:
        builds = ", ".join(erratum.left_out_by)
        return f"Debian's {kernel} {builds} builds leave out {erratum.kconfig or erratum.id}"
    return None


def _bringing(
    erratum: Erratum, cpus: Sequence[TargetImplementation], rule: str
) -> tuple[tuple[TargetImplementation, ...], bool]:
    """The cpus that make the kernel enable ``erratum``, and whether only on their own hosts."""
    listed = erratum.matched_by != "midr-seen"
    ranges = [r for r in erratum.affects if listed and not r.seen_midr_only]
    everywhere = tuple(cpu for cpu in cpus if any(_affected(r, cpu, cpus, rule) for r in ranges))
    if everywhere:
        return everywhere, False
    own = tuple(
        cpu
        for cpu in cpus
        if any(
            r.affects(cpu.midr, cpu.revidr)
            for r in erratum.affects
            if r.seen_midr_only or not listed
        )
    )
    return own, len(cpus) > 1 and bool(own)


def _affected(
    r: CpuRange, cpu: TargetImplementation, cpus: Sequence[TargetImplementation], rule: str
) -> bool:
    """Whether listed ``cpu`` makes the kernel match range ``r``. Under RULE_ANY_IN_RANGE a
    range with a REVIDR fix matches for every listed cpu not itself fixed once any listed
    cpu is in range (the kernel compared the range with the whole list)."""
    if rule == RULE_ANY_IN_RANGE and r.fixed_rv is not None:
        if not any(r.in_range(c.midr) for c in cpus):
            return False
        return not r.fixed(cpu.midr, cpu.revidr)
    return r.affects(cpu.midr, cpu.revidr)


def _no_effect(erratum: Erratum, id_registers: Mapping[str, int]) -> str | None:
    test = erratum.matters_only_if
    if erratum.applies == "none":
        return "no kernel workaround exists"
    if test is not None and test.holds(id_registers) is False:
        return f"changes nothing here: {test.explain(id_registers)}"
    return None


def _mitigation_verdict(
    mitigation: Mitigation, cpus: Sequence[TargetImplementation], id_registers: Mapping[str, int]
) -> MitigationVerdict:
    """The kernel's order: an ID field saying unaffected, a safe list (any cpu), the
    affected lists (the largest loop count any cpu needs), an ID field enabling it, the
    hypervisor's firmware answer when the registers hold it, else ``otherwise``."""
    test = mitigation.unaffected_if
    if test is not None and test.holds(id_registers):
        return MitigationVerdict(mitigation, "not needed", (), None, test.explain(id_registers))
    safe = _matching(mitigation.safe, cpus)
    if safe:
        return MitigationVerdict(
            mitigation, "not needed", safe, None, "a listed implementation is on its safe list"
        )
    affected = _matching(mitigation.affected, cpus)
    if affected:
        loops = [
            r.loop for r in mitigation.affected for c in affected if r.loop and r.in_range(c.midr)
        ]
        loop = max(loops) if loops else None
        return MitigationVerdict(
            mitigation, "enabled", affected, loop, "a listed implementation is on its affected list"
        )
    if mitigation.enabled_if is not None and mitigation.enabled_if.holds(id_registers):
        return MitigationVerdict(
            mitigation, "enabled", (), None, mitigation.enabled_if.explain(id_registers)
        )
    return _otherwise(mitigation, id_registers)


def _otherwise(mitigation: Mitigation, id_registers: Mapping[str, int]) -> MitigationVerdict:
    """No list or ID field decided: the hypervisor's firmware answer when the registers hold
    it, else ``otherwise``."""
    firmware = mitigation.firmware_unaffected_if
    answer = None if firmware is None else firmware.holds(id_registers)
    if firmware is not None and answer is not None:
        why = f"firmware: {firmware.explain(id_registers)}"
        if answer:
            return MitigationVerdict(mitigation, NOT_NEEDED, (), None, why)
        return _detected(mitigation, id_registers, why)
    if mitigation.otherwise == "vulnerable" and mitigation.capability in load_guest_words():
        return _detected(mitigation, id_registers, "no list says safe")
    state = {"firmware": FIRMWARE, "vulnerable": ENABLED, "unaffected": NOT_NEEDED}[
        mitigation.otherwise
    ]
    reasons = {
        "firmware": "no list decides: the hypervisor's firmware answer does",
        "vulnerable": "no list says safe: the kernel assumes it is vulnerable",
        "unaffected": "no listed implementation is affected",
    }
    return MitigationVerdict(mitigation, state, (), None, reasons[mitigation.otherwise])


def _detected(
    mitigation: Mitigation, id_registers: Mapping[str, int], why: str
) -> MitigationVerdict:
    """A detected mitigation: effective when a field of guest-words.toml says so."""
    words = load_guest_words().get(mitigation.capability)
    if words is None:
        return MitigationVerdict(mitigation, ENABLED, (), None, why)
    effective, reason = words.effective(id_registers)
    state = {True: ENABLED, False: VULNERABLE_STATE, None: DETECTED}[effective]
    return MitigationVerdict(mitigation, state, (), None, f"{why}; {reason}")


def _on_board(
    verdicts: list[MitigationVerdict],
    id_registers: Mapping[str, int],
    board: Board,
    kpti_facts: tuple[str, bool],
) -> list[MitigationVerdict]:
    """What the guest's board and command line change: a mitigation turned off, one that needs
    another to be effective first, KPTI forced on or off (core.board)."""
    words = load_guest_words()
    states: dict[str, str] = {}
    settled: list[MitigationVerdict] = []
    for given in verdicts:
        capability = given.mitigation.capability
        row = words.get(capability)
        verdict = given
        if given.state in (ENABLED, DETECTED) and row is not None:
            if board.turns_off(row.off_by):
                off = row.off_by or "mitigations=off"
                verdict = _vulnerable(given, f"turned off by the guest command line: {off}")
            elif row.needs and states.get(row.needs) == VULNERABLE_STATE:
                verdict = _vulnerable(given, f"not mitigated while {row.needs} is vulnerable")
        if capability == KPTI:
            verdict = _kpti(given, id_registers, board, kpti_facts)
        states[capability] = verdict.state
        settled.append(verdict)
    return settled


def _vulnerable(verdict: MitigationVerdict, reason: str) -> MitigationVerdict:
    return replace(verdict, state=VULNERABLE_STATE, loop=None, reason=reason)


def _kpti(
    verdict: MitigationVerdict,
    id_registers: Mapping[str, int],
    board: Board,
    kpti_facts: tuple[str, bool],
) -> MitigationVerdict:
    forced = kpti_forced(board, id_registers, *kpti_facts)
    if forced is None:
        return verdict
    on, by = forced
    safe = verdict.state == NOT_NEEDED
    state = ENABLED if on else (NOT_NEEDED if safe else VULNERABLE_STATE)
    reason = f"forced {'ON' if on else 'OFF'} by {by}"
    if by == "KASLR":
        reason += f" (the board's KASLR seed; {kpti_facts[0]} is 0)"
    return replace(verdict, state=state, reason=reason, unaffected=safe)


def _matching(
    ranges: Sequence[CpuRange], cpus: Sequence[TargetImplementation]
) -> tuple[TargetImplementation, ...]:
    return tuple(c for c in cpus if any(r.in_range(c.midr) for r in ranges))


@record
class PoolErrata:
    """A pool's errata: what its guests enable, what each host type alone adds, older guests."""

    targets: tuple[TargetImplementation, ...]
    guest: KernelView | None  # None: the guest kernel is older than 6.15
    marginal: tuple[tuple[TargetImplementation, tuple[Workaround, ...]], ...]
    older_guests: tuple[tuple[TargetImplementation, KernelView], ...]


def pool_errata(
    table: ErrataTable,
    targets: Sequence[TargetImplementation],
    id_registers: Mapping[str, int],
    board: Board = QEMU_VIRT,
) -> PoolErrata:
    """The errata of a pool model's guests (of the table's kernel release) on ``board``.

    A guest that ignores the target list (older than 6.15) reads its host's
    MIDR/REVIDR, or the model's pinned ``MIDR_EL1`` when the model sets it, beside the
    host's own REVIDR unless the model pins ``REVIDR_EL1`` too (as core.errata.hazards).
    """
    targets = tuple(targets)
    reads_list = table.target_list_rule != RULE_OWN_CPU
    guest = kernel_view(table, targets, id_registers, board=board) if reads_list else None
    marginal = tuple((t, brought_only_by(guest, t)) for t in targets) if guest else ()
    pinned = id_registers.get(MIDR_REGISTER)
    older: list[tuple[TargetImplementation, KernelView]] = []
    for target in targets:
        seen = target
        if pinned is not None:
            revidr = id_registers.get(REVIDR_REGISTER, target.revidr)
            seen = TargetImplementation(pinned, revidr, target.aidr)
        older.append((target, kernel_view(table, [seen], id_registers, board=board)))
    return PoolErrata(targets, guest, marginal, tuple(older))


# One workaround: the errata sharing one kernel capability (or one mitigation), by id.
Workaround = tuple[str, ...]


def brought_only_by(view: KernelView, target: TargetImplementation) -> tuple[Workaround, ...]:
    """The workarounds of ``view`` that every guest enables only because of ``target``.

    Errata that share a capability count as one workaround, kept while another
    implementation brings any of them; errata matched only on their own hosts
    are not on every guest and do not count.
    """
    groups: dict[str, list[str]] = {}
    kept: set[str] = set()
    for enabled in _every_guest(view):
        key = _workaround_key(enabled.erratum)
        if enabled.implementations == (target,):
            groups.setdefault(key, []).append(enabled.erratum.id)
        else:
            kept.add(key)
    errata: list[Workaround] = [tuple(ids) for key, ids in groups.items() if key not in kept]
    mitigations: list[Workaround] = [
        (v.mitigation.id,)
        for v in view.mitigations
        if v.state == ENABLED and v.implementations == (target,)
    ]
    return tuple(errata + mitigations)


def added_by(
    table: ErrataTable,
    targets: Sequence[TargetImplementation],
    newcomer: TargetImplementation,
    registers: Mapping[str, int],
) -> tuple[Workaround, ...]:
    """The workarounds every Linux >= 6.15 guest enables with ``newcomer`` among ``targets``
    and not without it (for a newcomer already in the list: its marginal cost)."""
    others = [t for t in targets if t != newcomer]
    before = _workarounds(kernel_view(table, others, registers))
    after = _workarounds(kernel_view(table, [*others, newcomer], registers))
    return tuple(ids for key, ids in after.items() if key not in before)


def guest_workarounds(
    table: ErrataTable, targets: Sequence[TargetImplementation], registers: Mapping[str, int]
) -> tuple[Workaround, ...]:
    """The workarounds every Linux >= 6.15 guest of a pool with ``targets`` enables."""
    return tuple(_workarounds(kernel_view(table, targets, registers)).values())


def _every_guest(view: KernelView) -> list[Enabled]:
    return [e for e in view.errata if e.no_effect is None and not _only_some(e)]


def _workarounds(view: KernelView) -> dict[str, Workaround]:
    groups: dict[str, list[str]] = {}
    for enabled in _every_guest(view):
        groups.setdefault(_workaround_key(enabled.erratum), []).append(enabled.erratum.id)
    for verdict in view.mitigations:
        if verdict.state == ENABLED:
            groups[verdict.mitigation.capability] = [verdict.mitigation.id]
    return {key: tuple(ids) for key, ids in groups.items()}


def _workaround_key(erratum: Erratum) -> str:
    return erratum.capability or erratum.id
