"""The errata table: the facts of ``data/errata.toml`` (derived from Debian's kernels by
scripts/errata-sync) joined with our words of ``data/errata-effects.toml``, resolved for one
guest kernel release, as types.

What the rows mean, and how the kernel matches them, is said in the package's
docstring (``qemu_errata.core.errata``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

from qemu_errata.core.catalogue import Catalogue, Field, load_catalogue
from qemu_errata.core.data_files import package_toml
from qemu_errata.core.errata.ranges import CpuRange, cpu_range
from qemu_errata.core.errata.schema import (
    APPLIES,
    FACTS_FILE,
    OTHERWISE,
    RULE_ANY_IN_RANGE,
    RULE_OWN_CPU,
    WORDS_FILE,
)
from qemu_errata.core.record import record
from qemu_errata.errors import CatalogueError, UnknownKernelError

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "APPLIES",
    "ERRATA_TABLE_FORMAT",
    "FROM_MIDR",
    "OTHERWISE",
    "RULE_ANY_IN_RANGE",
    "RULE_OWN_CPU",
    "TARGET_LIST_KERNEL",
    "CpuRange",
    "ErrataTable",
    "Erratum",
    "FieldTest",
    "Mitigation",
    "known_kernels",
    "load_errata_table",
    "release_of",
    "resolve_errata_table",
]

ERRATA_TABLE_FORMAT = "qemu-errata/errata-table/2"
# The first Linux whose guests match errata against the target implementation list.
TARGET_LIST_KERNEL = (6, 15)
_GUEST_DETECTS = frozenset({"guest", "hypervisor"})
FROM_MIDR = frozenset({"midr", "midr-seen", "cpufeature"})


@record
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


@record
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
        return self.applies in _GUEST_DETECTS and self.matched_by in FROM_MIDR


@record
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


@record
class ErrataTable:
    """What one guest kernel release carries (see load_errata_table)."""

    errata: tuple[Erratum, ...]
    mitigations: tuple[Mitigation, ...]
    linux: str  # the Debian packages the facts were derived from
    kernel: str  # the release: "7.2.13"
    target_list_rule: str  # RULE_OWN_CPU, RULE_ANY_IN_RANGE or "each-listed"
    # With a KASLR seed the kernel forces KPTI on unless this ID field (REG.FIELD) is set,
    # whatever CSV3 or the KPTI safe list say; "" when KASLR never forces it.
    kaslr_kpti_unless: str = ""

    @property
    def capabilities(self) -> frozenset[str]:
        """The kernel capabilities the table names."""
        named = [e.capability for e in self.errata] + [m.capability for m in self.mitigations]
        return frozenset(c for c in named if c)

    def by_log(self, description: str) -> tuple[Erratum | Mitigation, ...]:
        """The rows a kernel's "CPU features: detected: <description>" line stands for."""
        rows: list[Erratum | Mitigation] = [*self.errata, *self.mitigations]
        return tuple(r for r in rows if description == r.log or description in r.older_logs)


# ---------------------------------------------------------------- the data files


@functools.cache
def load_errata_table(kernel: str | None = None) -> ErrataTable:
    """The errata a guest kernel release (``7.2.13``; None: the newest known) carries, from
    the package's errata.toml (facts) and errata-effects.toml (our words); parsed once per
    process and release. UnknownKernelError names the known releases."""
    facts = _facts()
    words = package_toml("errata-effects.toml", WORDS_FILE)
    return resolve_errata_table(facts, words, kernel)


def release_of(kernel_release: str) -> str:
    """The upstream release of a Debian kernel's ``uname -r`` (``7.2.13+deb14-arm64`` ->
    ``7.2.13``)."""
    return kernel_release.split("+", maxsplit=1)[0].split("-", maxsplit=1)[0]


def series_of(release: str) -> str:
    """The series of a release (``7.2.13`` -> ``7.2``): errata.toml gives facts by series."""
    return ".".join(release.split(".")[:2])


def known_kernels() -> tuple[str, ...]:
    """The guest kernel releases the table answers for, oldest first."""
    return tuple(r for k in _facts()["kernel"] for r in k["releases"])


@functools.cache
def _facts() -> dict[str, Any]:
    return package_toml("errata.toml", FACTS_FILE)


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
        lists[row["name"]] = [cpu_range(r) for r in row["ranges"]]
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
    kaslr = str(series["kaslr_kpti_unless"])
    return ErrataTable(tuple(errata), mitigations, linux, release, rule, kaslr)


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
                affects=tuple(cpu_range(r) for r in row["affects"]),
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
        otherwise=str(entry["otherwise"]),
        effect=str(entry["effect"]),
    )


def _field_test(entry: dict[str, Any], catalogue: Catalogue) -> FieldTest:
    register = catalogue.get(str(entry["register"]))
    if register is None:
        raise CatalogueError(f"errata-effects.toml: register {entry['register']!r} unknown")
    return FieldTest(register.field(str(entry["field"])), int(entry["min"]))


def _check_unique(ids: Iterable[str], origin: str) -> None:
    seen: set[str] = set()
    for name in ids:
        if name in seen:
            raise CatalogueError(f"{origin}: {name!r} appears twice")
        seen.add(name)
