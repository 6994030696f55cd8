"""From the facts of each pinned kernel to the errata table's rows (pure).

One row per workaround (kernel capability) and one per documented erratum; each
row says which kernels carry it (series, or point-release ranges where Debian's
changelog shows a change), and where a fact differs between kernels the row keeps
the newest kernel's value and lists the older kernels' values under ``older``.
Every row of silicon-errata.rst is an erratum row or an ``undecided`` row saying
why no MIDR decides it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qemu_errata.errata_sync.csource import Guard, guard_holds, guard_symbols
from qemu_errata.errata_sync.debian import DocumentedErratum, version_key
from qemu_errata.errata_sync.kernel_facts import ALL_VERSIONS, Capability, KernelFacts, Range

TABLE_FORMAT = "qemu-errata/errata-table/2"
# Matchers that decide from the MIDR ranges of the entry alone.
MIDR_MATCHERS = frozenset(
    {"is_affected_midr_range", "is_affected_midr_range_list", "cpucap_multi_entry_cap_matches"}
)
# Subjects of Debian's changelog that may change an errata fact; each needs a [[change]] row.
ERRATA_SUBJECT = re.compile(
    r"^\[arm64\] (errata|cputype|cpufeature|proton-pack|spectre|kpti|mm: .*erratum)"
    r"|^\[arm64\] .*(Spectre|erratum|MIDR)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Change:
    """A point release that changed a fact (a [[change]] row of debian-kernels.toml)."""

    series: str
    release: str
    subject: str
    errata_added: tuple[str, ...] = ()
    capability_before: Mapping[str, str] | None = None
    log_before: Mapping[str, str] | None = None
    target_list_rule_before: str = ""
    no_fact_change: str = ""


@dataclass(frozen=True)
class SeriesInput:
    """What one pinned series gives: its source facts, Debian's builds, releases, changes."""

    series: str
    package: str  # "linux-source-7.2 7.2.13-1"
    facts: KernelFacts
    builds: Mapping[str, frozenset[str]]  # Debian flavour -> CONFIG symbols built in
    symbols: frozenset[str]  # every CONFIG symbol the kernel's Kconfig has
    releases: tuple[str, ...]  # the point releases we answer for, oldest first
    documented: tuple[DocumentedErratum, ...]
    changes: tuple[Change, ...]


# ---------------------------------------------------------------- per-release rows


def _release_rows(given: SeriesInput, release: str) -> dict[str, dict[str, Any]]:
    """Every row of one point release, keyed "workaround:CAP", "erratum:ID", "list:NAME",
    "undecided:ID" (values hold the row's facts, kernels not yet attached)."""
    later = [c for c in given.changes if version_key(release) < version_key(c.release)]
    facts = given.facts
    claimed: set[tuple[str, int]] = set()
    rows, carried_now, carried = _documented_rows(given, later, claimed)
    for capability in facts.capabilities:
        name = capability.capability
        if name in carried_now and name not in carried:
            continue  # only errata a later release brought or moved here carry it
        rows[f"workaround:{name}"] = _workaround_row(given, capability, claimed)
    for name, ranges in facts.lists.items():
        rows[f"list:{name}"] = {"name": name, "ranges": [_range(r) for r in ranges]}
    loops = [{**_range(r), "loop": k} for k, ranges in facts.bhb_loops for r in ranges]
    rows["list:spectre-bhb-loop"] = {"name": "spectre-bhb-loop", "ranges": loops}
    return rows


def _documented_rows(
    given: SeriesInput, later: Sequence[Change], claimed: set[tuple[str, int]]
) -> tuple[dict[str, dict[str, Any]], set[str], set[str]]:
    """The erratum and undecided rows of a release that ``later`` changes come after, the
    capabilities carrying documented errata in the source, and those carrying them in the
    release (a release before a change: without the errata it added, with the capability
    and log line each erratum had)."""
    added_later = {k for c in later for k in c.errata_added}
    capability_before: dict[str, str] = {}
    log_before: dict[str, str] = {}
    for change in sorted(later, key=lambda c: version_key(c.release), reverse=True):
        capability_before.update(change.capability_before or {})
        log_before.update(change.log_before or {})
    matchers = {c.capability: c.matcher for c in given.facts.capabilities}
    components: dict[str, list[str]] = {}
    for erratum in given.documented:
        components.setdefault(erratum.kconfig, []).extend(erratum.components)
    rows: dict[str, dict[str, Any]] = {}
    carried_now: set[str] = set()
    carried: set[str] = set()
    for erratum in given.documented:
        row = _erratum_row(given, erratum, claimed, components[erratum.kconfig])
        if row is None:
            if erratum.kconfig not in added_later:
                rows[f"undecided:{erratum.id}"] = _undecided(given, erratum)
            continue
        carried_now.update(row["workarounds"])
        if erratum.kconfig in added_later:
            continue
        old = capability_before.get(erratum.kconfig)
        if old is not None:
            rows[f"workaround:{old}"] = {
                "capability": old,
                "log": log_before[erratum.kconfig],
                "matcher": matchers[row["workarounds"][0]],
            }
            row["workarounds"] = [old]
        carried.update(row["workarounds"])
        rows[f"erratum:{erratum.id}"] = row
    return rows, carried_now, carried


def _erratum_row(
    given: SeriesInput,
    erratum: DocumentedErratum,
    claimed: set[tuple[str, int]],
    documented: Sequence[str],
) -> dict[str, Any] | None:
    """The erratum's ranges and capability, if a MIDR decides it in this kernel: the ranges
    of its Kconfig symbol that are its components', and those of no documented component."""
    if not erratum.kconfig:
        return None
    found: list[tuple[str, Range, Guard]] = []
    for capability in given.facts.capabilities:
        if capability.matcher not in MIDR_MATCHERS and not capability.ranges:
            continue
        in_entry = erratum.kconfig in guard_symbols(capability.guard)
        erratum_guarded = [r for r in capability.ranges if _names_erratum(r.guard)]
        for r in capability.ranges:
            mine = erratum.kconfig in guard_symbols(r.guard)
            if mine or (in_entry and not erratum_guarded):
                found.append((capability.capability, r, capability.guard + r.guard))
    for r in given.facts.lists["broken-dbm"]:
        if erratum.kconfig in guard_symbols(r.guard):
            found.append(("", r, r.guard))
    own = given.facts.own_midr.get(erratum.kconfig, ())
    found += [("", r, r.guard) for r in own]
    if not found:
        return None
    chosen = [
        f
        for f in found
        if _component_of(f[1], erratum.components) or not _component_of(f[1], documented)
    ]
    chosen = chosen or found
    capabilities = list(dict.fromkeys(c for c, _, _ in chosen))
    claimed.update((name, id(r)) for name, r, _ in chosen)
    guards = [g for _, _, g in chosen]
    row: dict[str, Any] = {
        "id": erratum.id,
        "vendor": erratum.vendor,
        "components": list(erratum.components),
        "kconfig": erratum.kconfig,
        "workarounds": [c for c in capabilities if c],
        "affects": list({repr(a): a for a in (_range(r) for _, r, _ in chosen)}.values()),
    }
    left_out = [
        build
        for build, symbols in sorted(given.builds.items())
        if not any(guard_holds(g, symbols) for g in guards)
    ]
    if left_out:
        row["left_out_by"] = left_out
    if capabilities == [""]:
        row["list"] = "own-midr" if own else "broken-dbm"
    return row


def _names_erratum(guard: Guard) -> bool:
    return any("ERRATUM" in s for s in guard_symbols(guard))


def _component_of(r: Range, components: Sequence[str]) -> bool:
    model = re.sub(r"[^A-Z0-9]", "", r.model.upper())
    return any(
        model.endswith(re.sub(r"[^A-Z0-9]", "", c.upper().removesuffix(" CORE")))
        for c in components
    )


def _undecided(given: SeriesInput, erratum: DocumentedErratum) -> dict[str, Any]:
    """Why no MIDR decides a documented erratum in this kernel."""
    if not erratum.kconfig:
        why = "no-workaround"
    elif erratum.kconfig not in given.symbols:
        why = "not-in-kernel"
    else:
        matchers = [
            c.matcher for c in given.facts.capabilities if erratum.kconfig in guard_symbols(c.guard)
        ]
        why = f"matcher:{matchers[0]}" if matchers else "not-midr"
    return {"id": erratum.id, "kconfig": erratum.kconfig, "why": why}


def _workaround_row(
    given: SeriesInput, capability: Capability, claimed: set[tuple[str, int]]
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "capability": capability.capability,
        "log": capability.log,
        "matcher": capability.matcher,
    }
    if capability.guard:
        row["kconfig"] = list(guard_symbols(capability.guard))
    unclaimed = [r for r in capability.ranges if (capability.capability, id(r)) not in claimed]
    if unclaimed:
        row["affects"] = [_range(r) for r in unclaimed]
    left_out = [
        build
        for build, symbols in sorted(given.builds.items())
        if not guard_holds(capability.guard, symbols)
    ]
    if left_out:
        row["left_out_by"] = left_out
    return row


def _range(r: Range) -> dict[str, Any]:
    row: dict[str, Any] = {"implementer": r.implementer, "part": r.part}
    if r.part_family:
        row["part_mask"] = 0xF00
    if (r.rv_min, r.rv_max) != ALL_VERSIONS:
        row["from"] = _rv(r.rv_min)
        row["to"] = _rv(r.rv_max)
    for revision, mask in r.fixed:
        row["fixed"] = {"revision": _rv(revision), "revidr_mask": mask}
    return row


def _rv(rv: int) -> str:
    return f"r{rv >> 20 & 0xF}p{rv & 0xF}"


# ---------------------------------------------------------------- merging kernels


def table(inputs: Sequence[SeriesInput]) -> dict[str, Any]:
    """The whole table document (what data/errata.toml holds)."""
    per_row: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    kernels = []
    for given in inputs:
        for release in given.releases:
            for key, row in _release_rows(given, release).items():
                per_row.setdefault(key, []).append((given.series, release, row))
        kernels.append(_kernel_row(given))
    document: dict[str, Any] = {
        "table": {
            "format": TABLE_FORMAT,
            "derived_from": [g.package for g in inputs],
        },
        "kernel": kernels,
    }
    all_releases = {g.series: g.releases for g in inputs}
    for kind in ("workaround", "erratum", "undecided", "list"):
        rows = []
        for key, found in per_row.items():
            if key.startswith(kind + ":"):
                rows.append(_merged(found, all_releases))
        document[kind] = rows
    return document


def _kernel_row(given: SeriesInput) -> dict[str, Any]:
    rules = [{"rule": given.facts.target_list_rule, "kernels": [given.series]}]
    for change in given.changes:
        if change.target_list_rule_before:
            rules = [
                {
                    "rule": change.target_list_rule_before,
                    "kernels": [f"{given.series}-{_previous(given, change.release)}"],
                },
                {"rule": given.facts.target_list_rule, "kernels": [f"{change.release}-"]},
            ]
    return {
        "series": given.series,
        "releases": list(given.releases),
        "builds": sorted(given.builds),
        "target_list": rules,
        "kaslr_kpti_unless": given.facts.kaslr_needs_kpti_unless,
    }


def _previous(given: SeriesInput, release: str) -> str:
    older = [r for r in given.releases if version_key(r) < version_key(release)]
    return older[-1]


def _merged(
    found: list[tuple[str, str, dict[str, Any]]], releases: Mapping[str, tuple[str, ...]]
) -> dict[str, Any]:
    """One row from the per-release rows: the newest value, older values where different."""
    newest = found[-1][2]
    groups: dict[str, list[tuple[str, str]]] = {}
    values: dict[str, dict[str, Any]] = {}
    for series, release, row in found:
        differing = {k: v for k, v in row.items() if newest.get(k) != v}
        key = repr(sorted(differing.items()))
        groups.setdefault(key, []).append((series, release))
        values[key] = differing
    merged = dict(newest)
    merged["kernels"] = _spans([sr for group in groups.values() for sr in group], releases)
    older = [
        {"kernels": _spans(group, releases), **values[key]}
        for key, group in groups.items()
        if values[key]
    ]
    if older:
        merged["older"] = older
    return merged


def _spans(carried: list[tuple[str, str]], releases: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Kernel specs: "7.2" (every release we answer for), "7.2.10-" (from), "7.2-7.2.9"
    (up to), "7.2.7-7.2.9" (between)."""
    specs = []
    for series, known in releases.items():
        mine = [r for s, r in carried if s == series]
        if not mine:
            continue
        first, last = known.index(mine[0]), known.index(mine[-1])
        if mine != list(known[first : last + 1]):
            raise ValueError(f"{series}: a fact comes and goes between releases: {mine}")
        if first == 0 and last == len(known) - 1:
            specs.append(series)
        elif first == 0:
            specs.append(f"{series}-{mine[-1]}")
        elif last == len(known) - 1:
            specs.append(f"{mine[0]}-")
        else:
            specs.append(f"{mine[0]}-{mine[-1]}")
    return specs
