"""What a kernel enables for a set of CPUs under the kernel's matching rules (see the package)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qemu_errata.core.errata.table import (
    FROM_MIDR,
    TARGET_LIST_KERNEL,
    CpuRange,
    ErrataTable,
    Erratum,
    Mitigation,
)
from qemu_errata.core.implementations import TargetImplementation


@dataclass(frozen=True)
class Enabled:
    """An erratum a kernel enables, and the implementations that bring it."""

    erratum: Erratum
    implementations: tuple[TargetImplementation, ...]
    own_hosts_only: bool  # matched against the MIDR the CPU reads: only on those hosts
    no_effect: str | None  # why it changes nothing under these registers, if it does not
    only_some_kernels: str | None = None  # why only some kernels of the version carry it


@dataclass(frozen=True)
class Suppressed:
    """An erratum whose MIDR matches but whose required ID field rules it out."""

    erratum: Erratum
    implementations: tuple[TargetImplementation, ...]
    reason: str


@dataclass(frozen=True)
class MitigationVerdict:
    """What a kernel does about one mitigation: state, and which implementations decided it.

    state: "enabled", "not needed", or "firmware" (the hypervisor's SMCCC answer decides).
    """

    mitigation: Mitigation
    state: str
    implementations: tuple[TargetImplementation, ...]
    loop: int | None
    reason: str


@dataclass(frozen=True)
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
        certain += [v.mitigation.log for v in self.mitigations if v.state == "enabled"]
        possible = [e.erratum.log for e in self.errata if _only_some(e)]
        possible += [v.mitigation.log for v in self.mitigations if v.state == "firmware"]
        unique = tuple(dict.fromkeys(line for line in certain if line))
        return unique, tuple(dict.fromkeys(p for p in possible if p and p not in unique))


def _only_some(enabled: Enabled) -> bool:
    return enabled.own_hosts_only or enabled.only_some_kernels is not None


def carries(since: tuple[int, int] | None, kernel: tuple[int, int] | None) -> bool:
    """Whether ``kernel`` (None: the newest) carries a workaround that appeared in ``since``."""
    return since is not None and (kernel is None or since <= kernel)


def kernel_view(
    table: ErrataTable,
    cpus: Sequence[TargetImplementation],
    id_registers: Mapping[str, int],
    kernel: tuple[int, int] | None = None,
    at_el2: bool = False,
) -> KernelView:
    """What a kernel matching ``cpus`` enables (a guest unless ``at_el2``).

    ``cpus`` is the whole target list for a guest of Linux >= 6.15, or the one
    implementation an older guest (or one host CPU) reads; an erratum is enabled
    when ANY of them is affected.
    """
    enabled: list[Enabled] = []
    suppressed: list[Suppressed] = []
    for erratum in table.errata:
        if not _considered(erratum, kernel, at_el2):
            continue
        bringing, own_hosts_only = _bringing(erratum, cpus)
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
                None if at_el2 else _only_some_kernels(erratum, kernel),
            )
        )
    verdicts = tuple(
        _mitigation_verdict(m, cpus, id_registers)
        for m in table.mitigations
        if carries(m.since, kernel)
    )
    return KernelView(tuple(enabled), tuple(suppressed), verdicts)


def _considered(erratum: Erratum, kernel: tuple[int, int] | None, at_el2: bool) -> bool:
    """A host kernel: every CPU erratum (documented ones too); a guest: what it detects, if
    its series carries the workaround (from its first release, or back-ported to it)."""
    if at_el2:
        return erratum.matched_by in FROM_MIDR or erratum.applies == "none"
    return erratum.guest_detects and (carries(erratum.since, kernel) or kernel in erratum.stable)


def _only_some_kernels(erratum: Erratum, kernel: tuple[int, int] | None) -> str | None:
    """Why not every guest kernel of this version carries the workaround, if not."""
    if kernel is not None and not carries(erratum.since, kernel):
        return f"only in the {kernel[0]}.{kernel[1]} point releases that carry the backport"
    if erratum.left_out_by:
        return f"{' and '.join(erratum.left_out_by)} kernels are built without {erratum.kconfig}"
    return None


def _bringing(
    erratum: Erratum, cpus: Sequence[TargetImplementation]
) -> tuple[tuple[TargetImplementation, ...], bool]:
    """The cpus that make the kernel enable ``erratum``, and whether only on their own hosts."""
    listed = erratum.matched_by != "midr-seen"
    everywhere = tuple(
        cpu
        for cpu in cpus
        if any(
            r.affects(cpu.midr, cpu.revidr)
            for r in erratum.affects
            if listed and not r.seen_midr_only
        )
    )
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
    firmware = mitigation.firmware_unaffected_if
    answer = None if firmware is None else firmware.holds(id_registers)
    if firmware is not None and answer is not None:
        state = "not needed" if answer else "enabled"
        return MitigationVerdict(
            mitigation, state, (), None, f"firmware: {firmware.explain(id_registers)}"
        )
    state = {"firmware": "firmware", "vulnerable": "enabled", "unaffected": "not needed"}[
        mitigation.otherwise
    ]
    reasons = {
        "firmware": "no list decides: the hypervisor's firmware answer does",
        "vulnerable": "no list says safe: the kernel assumes it is vulnerable",
        "unaffected": "no listed implementation is affected",
    }
    return MitigationVerdict(mitigation, state, (), None, reasons[mitigation.otherwise])


def _matching(
    ranges: Sequence[CpuRange], cpus: Sequence[TargetImplementation]
) -> tuple[TargetImplementation, ...]:
    return tuple(c for c in cpus if any(r.in_range(c.midr) for r in ranges))


@dataclass(frozen=True)
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
    kernel: tuple[int, int] | None = None,
) -> PoolErrata:
    """The errata of a pool model's guests.

    A guest that ignores the target list (older than 6.15) reads its host's
    MIDR/REVIDR, or the model's pinned ``MIDR_EL1``/``REVIDR_EL1`` when the model
    sets them; with no ``kernel`` given it is judged with every workaround of the
    table, as stable kernels carry many of them back.
    """
    targets = tuple(targets)
    reads_list = kernel is None or kernel >= TARGET_LIST_KERNEL
    guest = kernel_view(table, targets, id_registers, kernel) if reads_list else None
    marginal = tuple((t, brought_only_by(guest, t)) for t in targets) if guest else ()
    pinned = id_registers.get("MIDR_EL1")
    older: list[tuple[TargetImplementation, KernelView]] = []
    for target in targets:
        seen = target
        if pinned is not None:
            seen = TargetImplementation(pinned, id_registers.get("REVIDR_EL1"), target.aidr)
        older.append((target, kernel_view(table, [seen], id_registers, kernel)))
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
        if v.state == "enabled" and v.implementations == (target,)
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
        if verdict.state == "enabled":
            groups[verdict.mitigation.capability] = [verdict.mitigation.id]
    return {key: tuple(ids) for key, ids in groups.items()}


def _workaround_key(erratum: Erratum) -> str:
    return erratum.capability or erratum.id
