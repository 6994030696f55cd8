"""Errata: which workarounds and mitigations a guest kernel enables for a set of CPUs (pure).

The table is ``data/errata.toml``. Matching follows the kernel's own rules: a
MIDR range compares implementer, architecture and part number, then the
variant/revision pair within [from, to]; a range may name one revision that is
fixed when the CPU's REVIDR has any of some bits (``MIDR_FIXED``). Linux 6.15
and later, given the target implementation list by the hypervisor, enable a
workaround when ANY listed implementation is affected; an older kernel decides
from the one MIDR/REVIDR it reads. A few matches never consult the list (the
Kryo part-family match, Fujitsu's early-boot check): those only hold on hosts
of that implementation. Further conditions are ID register fields: ``requires``
decides whether the kernel enables a workaround at all, ``matters_only_if``
whether it changes anything; both are judged on the registers the guest sees
(the pool model's values). Which kernels carry a workaround: those from its
mainline ``since`` on, some point releases of the older series it was
back-ported to (``stable``), and not the builds of distributions that leave it
out (``left_out_by``), as the nested hosts' Debian kernel Images show.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from qemu_errata.core.catalogue import Catalogue, Field, load_catalogue
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import CpuNames, load_cpu_names
from qemu_errata.errors import CatalogueError, UnknownKernelError

ERRATA_TABLE_FORMAT = "qemu-errata/errata-table/2"
# The first Linux whose guests match errata against the target implementation list.
TARGET_LIST_KERNEL = (6, 15)
# How a kernel matches listed CPUs (errata.toml [[kernel]].target_list, read from its source).
RULE_OWN_CPU = "own-cpu"  # no list: the MIDR/REVIDR the CPU reads
RULE_ANY_IN_RANGE = "any-in-range"  # 6.15 to 7.2.8: any listed part in range, then REVIDR
# fixes judged on each listed CPU whatever its part (a fixed part beside another still counts)

_IMPLEMENTER_ARCHITECTURE = 0xFF0F0000
_ARCHITECTURE_ARMV8 = 0xF << 16  # every real MIDR; the kernel's model values include it
_VARIANT_REVISION = 0x00F0000F

# Who acts on an erratum: a guest kernel ("guest"), KVM although a guest detects it too
# ("hypervisor"), a kernel at EL2 only ("host"), a device, or nobody ("none").
APPLIES = ("guest", "hypervisor", "host")
_GUEST_DETECTS = frozenset({"guest", "hypervisor"})
_FROM_MIDR = frozenset({"midr", "midr-seen", "cpufeature"})
OTHERWISE = ("firmware", "vulnerable", "unaffected")


@dataclass(frozen=True)
class CpuRange:
    """One implementation range of an erratum or mitigation list, as the kernel matches it."""

    implementer: int
    part: int
    part_mask: int = 0xFFF
    rv_min: int = 0
    rv_max: int = _VARIANT_REVISION
    fixed_rv: int | None = None
    fixed_revidr_mask: int = 0
    seen_midr_only: bool = False
    loop: int | None = None

    def in_range(self, midr: int) -> bool:
        """Same model (implementer, architecture, part bits) and variant/revision in range."""
        mask = _IMPLEMENTER_ARCHITECTURE | self.part_mask << 4
        model = self.implementer << 24 | _ARCHITECTURE_ARMV8 | self.part << 4
        return (
            midr & mask == model & mask and self.rv_min <= midr & _VARIANT_REVISION <= self.rv_max
        )

    def affects(self, midr: int, revidr: int | None) -> bool:
        """In range and not fixed by a REVIDR bit (an unknown REVIDR fixes nothing)."""
        if not self.in_range(midr):
            return False
        fixed = (
            self.fixed_rv == midr & _VARIANT_REVISION
            and revidr is not None
            and revidr & self.fixed_revidr_mask != 0
        )
        return not fixed

    @property
    def all_versions(self) -> bool:
        return self.rv_min == 0 and self.rv_max == _VARIANT_REVISION

    def describe(self, names: CpuNames | None = None) -> str:
        """E.g. ``Arm Cortex-A76 r0p0-r3p1`` or ``Arm Neoverse-N1 all versions``."""
        names = names or load_cpu_names()
        implementer = names.implementers.get(self.implementer, f"implementer {self.implementer:#x}")
        if self.part_mask != 0xFFF:
            part = f"parts {self.part:#05x} (mask {self.part_mask:#05x})"
        else:
            part = names.parts.get((self.implementer, self.part), f"part {self.part:#05x}")
        if self.all_versions:
            versions = "all versions"
        else:
            versions = f"{_rv_name(self.rv_min)}-{_rv_name(self.rv_max)}"
            if self.rv_min == self.rv_max:
                versions = _rv_name(self.rv_min)
        fixed = ""
        if self.fixed_rv is not None:
            fixed = f" ({_rv_name(self.fixed_rv)} fixed when REVIDR & {self.fixed_revidr_mask:#x})"
        return f"{implementer} {part} {versions}{fixed}"


@dataclass(frozen=True)
class FieldTest:
    """An ID register field the kernel compares with a minimum."""

    field: Field
    minimum: int

    def holds(self, id_registers: Mapping[str, int]) -> bool | None:
        """Whether the field reaches the minimum; None when the register is not known."""
        value = id_registers.get(self.field.register)
        if value is None:
            return None
        return self.field.number(self.field.raw(value)) >= self.minimum

    def explain(self, id_registers: Mapping[str, int]) -> str:
        value = id_registers.get(self.field.register)
        shown = "unknown" if value is None else self.field.describe(self.field.raw(value))
        return f"{self.field.qualified_name} is {shown}, needs >= {self.minimum:#x}"


@dataclass(frozen=True)
class Erratum:
    """One row of the table (see the comment at the top of errata.toml)."""

    id: str
    vendor: str
    capability: str
    kconfig: str
    left_out_by: tuple[str, ...]  # Debian builds (flavours) of this kernel built without it
    log: str
    applies: str
    matched_by: str
    affects: tuple[CpuRange, ...]
    requires: tuple[FieldTest, ...]
    matters_only_if: FieldTest | None
    effect: str
    matcher: str = ""  # the kernel function that matches it
    older_logs: tuple[str, ...] = ()

    @property
    def guest_detects(self) -> bool:
        """A guest kernel detects (and logs) it when its CPUs match."""
        return self.applies in _GUEST_DETECTS and self.matched_by in _FROM_MIDR


@dataclass(frozen=True)
class Mitigation:
    """A Spectre/Meltdown mitigation whose need the kernel decides partly from MIDR lists."""

    id: str
    capability: str
    log: str
    older_logs: tuple[str, ...]
    unaffected_if: FieldTest | None
    enabled_if: FieldTest | None
    firmware_unaffected_if: FieldTest | None
    safe: tuple[CpuRange, ...]
    affected: tuple[CpuRange, ...]
    otherwise: str
    effect: str


@dataclass(frozen=True)
class ErrataTable:
    """What one guest kernel release carries (see load_errata_table)."""

    errata: tuple[Erratum, ...]
    mitigations: tuple[Mitigation, ...]
    linux: str  # the Debian packages the facts were derived from
    kernel: str  # the release: "7.2.13"
    target_list_rule: str  # RULE_OWN_CPU, RULE_ANY_IN_RANGE or "each-listed"

    @property
    def capabilities(self) -> frozenset[str]:
        """The kernel capabilities the table names."""
        named = [e.capability for e in self.errata] + [m.capability for m in self.mitigations]
        return frozenset(c for c in named if c)

    def by_log(self, description: str) -> tuple[Erratum | Mitigation, ...]:
        """The rows a kernel's "CPU features: detected: <description>" line stands for."""
        rows: list[Erratum | Mitigation] = [*self.errata, *self.mitigations]
        return tuple(r for r in rows if description == r.log or description in r.older_logs)


# ---------------------------------------------------------------- decisions


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


def kernel_view(
    table: ErrataTable,
    cpus: Sequence[TargetImplementation],
    id_registers: Mapping[str, int],
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
    verdicts = tuple(_mitigation_verdict(m, cpus, id_registers) for m in table.mitigations)
    return KernelView(tuple(enabled), tuple(suppressed), verdicts)


def _considered(erratum: Erratum, at_el2: bool) -> bool:
    """A host kernel: every CPU erratum; a guest: what it detects."""
    return erratum.matched_by in _FROM_MIDR if at_el2 else erratum.guest_detects


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
        fixed = (
            r.fixed_rv == cpu.midr & _VARIANT_REVISION
            and cpu.revidr is not None
            and cpu.revidr & r.fixed_revidr_mask != 0
        )
        return not fixed
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
    table: ErrataTable, targets: Sequence[TargetImplementation], id_registers: Mapping[str, int]
) -> PoolErrata:
    """The errata of a pool model's guests (of the table's kernel release).

    A guest that ignores the target list (older than 6.15) reads its host's
    MIDR/REVIDR, or the model's pinned ``MIDR_EL1``/``REVIDR_EL1`` when the model
    sets them.
    """
    targets = tuple(targets)
    reads_list = table.target_list_rule != RULE_OWN_CPU
    guest = kernel_view(table, targets, id_registers) if reads_list else None
    marginal = tuple((t, brought_only_by(guest, t)) for t in targets) if guest else ()
    pinned = id_registers.get("MIDR_EL1")
    older: list[tuple[TargetImplementation, KernelView]] = []
    for target in targets:
        seen = target
        if pinned is not None:
            seen = TargetImplementation(pinned, id_registers.get("REVIDR_EL1"), target.aidr)
        older.append((target, kernel_view(table, [seen], id_registers)))
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


# ---------------------------------------------------------------- the data files


@functools.cache
def load_errata_table(kernel: str | None = None) -> ErrataTable:
    """The errata a guest kernel release (``7.2.13``; None: the newest known) carries, from
    the package's errata.toml (facts) and errata-effects.toml (our words); parsed once per
    process and release. UnknownKernelError names the known releases."""
    data = resources.files("qemu_errata").joinpath("data")
    facts = _toml(data.joinpath("errata.toml").read_text("utf-8"), "errata.toml")
    words = _toml(data.joinpath("errata-effects.toml").read_text("utf-8"), "errata-effects.toml")
    return resolve_errata_table(facts, words, kernel)


def release_of(kernel_release: str) -> str:
    """The upstream release of a Debian kernel's ``uname -r`` (``7.2.13+deb14-arm64`` ->
    ``7.2.13``)."""
    return kernel_release.split("+", maxsplit=1)[0].split("-", maxsplit=1)[0]


def known_kernels() -> tuple[str, ...]:
    """The guest kernel releases the table answers for, oldest first."""
    data = resources.files("qemu_errata").joinpath("data")
    facts = _toml(data.joinpath("errata.toml").read_text("utf-8"), "errata.toml")
    return tuple(r for k in facts["kernel"] for r in k["releases"])


def _toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{origin}: not valid TOML: {error}") from None


def resolve_errata_table(
    facts: dict[str, Any],
    words: dict[str, Any],
    kernel: str | None,
    catalogue: Catalogue | None = None,
) -> ErrataTable:
    """The rows of ``facts`` that ``kernel`` carries, with its values, joined with ``words``."""
    catalogue = catalogue or load_catalogue()
    if facts.get("table", {}).get("format") != ERRATA_TABLE_FORMAT:
        raise CatalogueError(f"errata.toml: [table].format is not {ERRATA_TABLE_FORMAT!r}")
    releases = [r for k in facts["kernel"] for r in k["releases"]]
    release = kernel or releases[-1]
    if release not in releases:
        raise UnknownKernelError(
            f"guest kernel {release!r} is not known; known: {', '.join(releases)}"
        )
    version = _release(release)
    series = next(k for k in facts["kernel"] if release in k["releases"])
    rule = next(r["rule"] for r in series["target_list"] if _carries(r["kernels"], version))
    workarounds = {w["capability"]: w for w in (_at(r, version) for r in facts["workaround"]) if w}
    lists: dict[str, list[CpuRange]] = {}
    for row in filter(None, (_at(r, version) for r in facts["list"])):
        lists[row["name"]] = [_range(r) for r in row["ranges"]]
    effects = {w["capability"]: w for w in words.get("workaround", [])}
    effects.update({f"list:{w['name']}": w for w in words.get("list", [])})
    effects.update({f"own-midr:{w['kconfig']}": w for w in words.get("own_midr", [])})
    mitigation_capabilities = {m["capability"] for m in words.get("mitigation", [])}
    errata: list[Erratum] = []
    for row in filter(None, (_at(r, version) for r in facts["erratum"])):
        errata += _errata_of(row, workarounds, effects, catalogue)
    for capability, row in workarounds.items():
        if "affects" in row and capability not in mitigation_capabilities:
            errata += _errata_of(
                {
                    "id": row["log"] or capability,
                    "vendor": "",
                    "kconfig": "",
                    "workarounds": [capability],
                    "affects": row["affects"],
                    "left_out_by": row.get("left_out_by", []),
                },
                workarounds,
                effects,
                catalogue,
            )
    mitigations = tuple(
        _mitigation(m, workarounds, lists, catalogue)
        for m in words.get("mitigation", [])
        if m["capability"] in workarounds or "log" in m
    )
    _check_unique((e.id for e in errata), "errata.toml")
    linux = ", ".join(facts["table"]["derived_from"])
    return ErrataTable(tuple(errata), mitigations, linux, release, rule)


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _carries(specs: list[str], version: tuple[int, ...]) -> bool:
    """Whether ``version`` is in one of the kernel specs ("7.2", "7.2.10-", "7.2-7.2.9")."""
    for spec in specs:
        low, dash, high = spec.partition("-")
        first = _release(low)
        if not dash:
            if version[: len(first)] == first:
                return True
            continue
        series = first[:2]
        if version[:2] != series:
            continue
        if first > version[: len(first)]:
            continue
        if high and version > _release(high):
            continue
        return True
    return False


def _at(row: dict[str, Any], version: tuple[int, ...]) -> dict[str, Any] | None:
    """The row as ``version`` has it (its ``older`` values applied), or None if not carried."""
    if not _carries(row["kernels"], version):
        return None
    resolved = dict(row)
    for older in row.get("older", []):
        if _carries(older["kernels"], version):
            resolved.update({k: v for k, v in older.items() if k != "kernels"})
    return resolved


# Rows no capability carries: the broken-DBM list (cpufeature.c), and code that compares the
# MIDR the CPU reads (never the target list).
_MATCHED_BY = {"list:broken-dbm": "cpufeature", "list:own-midr": "midr-seen"}


def _errata_of(
    row: dict[str, Any],
    workarounds: dict[str, dict[str, Any]],
    effects: dict[str, dict[str, Any]],
    catalogue: Catalogue,
) -> list[Erratum]:
    """One Erratum per workaround carrying the row (a list row when none does)."""
    keys = row["workarounds"] or [f"list:{row['list']}"]
    lookup = {"list:own-midr": f"own-midr:{row['kconfig']}"}
    found = []
    for key in keys:
        workaround = workarounds.get(key, {"log": "", "matcher": ""})
        words = effects.get(lookup.get(key, key))
        if words is None:
            raise CatalogueError(f"errata-effects.toml: no row for {key} ({row['id']})")
        only_if = words.get("matters_only_if")
        found.append(
            Erratum(
                # Several workarounds (ThunderX2 219): each by the line it logs.
                id=row["id"] if len(keys) == 1 else workaround["log"] or key,
                vendor=row["vendor"],
                capability="" if key.startswith("list:") else key,
                kconfig=row["kconfig"],
                left_out_by=tuple(row.get("left_out_by", ())),
                log=workaround["log"],
                applies=str(words["applies"]),
                matched_by=_MATCHED_BY.get(key, "midr"),
                affects=tuple(_range(r) for r in row["affects"]),
                requires=tuple(_field_test(t, catalogue) for t in words.get("requires", [])),
                matters_only_if=None if only_if is None else _field_test(only_if, catalogue),
                effect=str(words["effect"]),
                matcher=workaround["matcher"],
            )
        )
    return found


def _mitigation(
    entry: dict[str, Any],
    workarounds: dict[str, dict[str, Any]],
    lists: dict[str, list[CpuRange]],
    catalogue: Catalogue,
) -> Mitigation:
    otherwise = str(entry["otherwise"])
    if otherwise not in OTHERWISE:
        raise CatalogueError(f"errata-effects.toml: {entry['id']}: otherwise {otherwise!r}")
    unaffected_if, enabled_if = entry.get("unaffected_if"), entry.get("enabled_if")
    firmware = entry.get("firmware_unaffected_if")
    log = workarounds.get(entry["capability"], {}).get("log") or entry["log"]
    return Mitigation(
        id=str(entry["id"]),
        capability=str(entry["capability"]),
        log=str(log),
        older_logs=tuple(str(s) for s in entry.get("older_logs", [])),
        unaffected_if=None if unaffected_if is None else _field_test(unaffected_if, catalogue),
        enabled_if=None if enabled_if is None else _field_test(enabled_if, catalogue),
        firmware_unaffected_if=None if firmware is None else _field_test(firmware, catalogue),
        safe=tuple(r for name in entry["safe"] for r in lists[name]),
        affected=tuple(r for name in entry["affected"] for r in lists[name]),
        otherwise=otherwise,
        effect=str(entry["effect"]),
    )


def _range(entry: dict[str, Any]) -> CpuRange:
    fixed = entry.get("fixed")
    part_mask = int(entry.get("part_mask", 0xFFF))
    return CpuRange(
        implementer=int(entry["implementer"]),
        part=int(entry["part"]),
        part_mask=part_mask,
        rv_min=_rv(entry["from"]) if "from" in entry else 0,
        rv_max=_rv(entry["to"]) if "to" in entry else _VARIANT_REVISION,
        fixed_rv=None if fixed is None else _rv(fixed["revision"]),
        fixed_revidr_mask=0 if fixed is None else int(fixed["revidr_mask"]),
        # The kernel's part-family match (Kryo) reads the CPU's own MIDR, never the list.
        seen_midr_only=part_mask != 0xFFF,
        loop=entry.get("loop"),
    )


def _field_test(entry: dict[str, Any], catalogue: Catalogue) -> FieldTest:
    register = catalogue.get(str(entry["register"]))
    if register is None:
        raise CatalogueError(f"errata-effects.toml: register {entry['register']!r} unknown")
    return FieldTest(register.field(str(entry["field"])), int(entry["min"]))


def _rv(name: str) -> int:
    """``r3p1`` as the kernel's variant/revision bits (variant [23:20], revision [3:0])."""
    variant, _, revision = name.removeprefix("r").partition("p")
    v, r = int(variant), int(revision)
    if not (0 <= v <= 0xF and 0 <= r <= 0xF) or not name.startswith("r"):
        raise CatalogueError(f"errata.toml: {name!r} is not a revision rNpM with N, M in 0..15")
    return v << 20 | r


def _rv_name(rv: int) -> str:
    return f"r{rv >> 20 & 0xF}p{rv & 0xF}"


def _check_unique(ids: Iterable[str], origin: str) -> None:
    seen: set[str] = set()
    for name in ids:
        if name in seen:
            raise CatalogueError(f"{origin}: {name!r} appears twice")
        seen.add(name)
