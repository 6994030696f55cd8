"""Debian's side of a kernel: build configs, changelog, and silicon-errata.rst rows (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_CHANGELOG_ENTRY = re.compile(r"^linux(?:-[\d.]+)? \((?P<version>[^)]+)\) (?P<suite>[\w-]+);")
_UPSTREAM = re.compile(r"ChangeLog-(?P<release>\d+\.\d+(?:\.\d+)?)\s*$")
_ITEM = re.compile(r"^\s+- (?P<subject>.*)$")
_CONTINUED = re.compile(r"^\s{6,}(?P<more>\S.*)$")


def enabled_symbols(config: str) -> frozenset[str]:
    """The CONFIG symbols a .config builds in (=y), without the CONFIG_ prefix."""
    return frozenset(re.findall(r"^CONFIG_(\w+)=y$", config, re.M))


def upstream_release(debian_version: str) -> str:
    """``7.2.13-1~bpo13+1`` -> ``7.2.13``."""
    return debian_version.split("-")[0].split("~")[0]


def version_key(release: str) -> tuple[int, ...]:
    return tuple(int(p) for p in release.split("."))


def shipped_releases(changelog: str, series: str) -> tuple[str, ...]:
    """The upstream point releases of ``series`` Debian uploaded (not rc), oldest first."""
    found = set()
    for line in changelog.splitlines():
        match = _CHANGELOG_ENTRY.match(line)
        if match and "~rc" not in match["version"]:
            release = upstream_release(match["version"])
            if release.startswith(series + ".") and release.count(".") == 2:
                found.add(release)
    return tuple(sorted(found, key=version_key))


def stable_subjects(changelog: str) -> dict[str, list[str]]:
    """The upstream stable commit subjects Debian's changelog lists, by stable release."""
    by_release: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in changelog.splitlines():
        upstream = _UPSTREAM.search(line)
        if upstream:
            current = by_release.setdefault(upstream["release"], [])
            continue
        if _CHANGELOG_ENTRY.match(line) or line.startswith("  * "):
            current = None
            continue
        item = _ITEM.match(line)
        if current is not None and item:
            current.append(item["subject"].strip())
        elif current is not None and current and _CONTINUED.match(line):
            current[-1] += " " + line.strip()
    return by_release


@dataclass(frozen=True)
class DocumentedErratum:
    """One erratum of Documentation/arch/arm64/silicon-errata.rst (rows of one id merged)."""

    vendor: str
    components: tuple[str, ...]
    number: str  # "826319", "AC03_CPU_38", "T410-OLY-1029"
    kconfig: str  # "" for N/A

    @property
    def id(self) -> str:
        return f"{self.vendor} erratum {self.number}"


def documented_errata(rst: str) -> tuple[DocumentedErratum, ...]:
    """The table's rows, one per (vendor, erratum number, Kconfig), in the table's order."""
    rows: list[list[str]] = []
    block: list[list[str]] = []
    for line in rst.splitlines():
        if line.startswith("+"):
            if block:
                rows.extend(_block_rows(block))
            block = []
        elif line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    merged: dict[tuple[str, str, str], DocumentedErratum] = {}
    for vendor, component, numbers, kconfig in rows:
        kconfig = "" if kconfig in ("N/A", "") else kconfig
        for number in re.split(r"[,\s]+", numbers):
            number = number.removeprefix("E").strip("#")
            if not number:
                continue
            arm = re.fullmatch(r"ARM64_ERRATUM_(\d+)", kconfig)
            if number == "N/A" and arm:  # another vendor's core with an Arm erratum
                number, component = arm.group(1), f"{vendor} {component}"
                vendor = "ARM"
            key = (vendor, number, kconfig)
            old = merged.get(key)
            components = (old.components if old else ()) + (component,)
            merged[key] = DocumentedErratum(vendor, tuple(dict.fromkeys(components)), number, kconfig)
    return tuple(merged.values())


def _block_rows(block: list[list[str]]) -> list[tuple[str, str, str, str]]:
    """A block of lines between separators: one row, cells continued over lines; a line
    with an empty vendor continues the row above (more numbers of one component)."""
    if len(block[0]) != 4 or block[0][0] in ("Implementor",):
        return []
    rows: list[list[str]] = []
    for cells in block:
        if rows and not cells[0] and not cells[1]:
            rows[-1][2] += " " + cells[2]
            rows[-1][3] = rows[-1][3] or cells[3]
        else:
            rows.append(list(cells))
    return [(r[0], r[1], r[2], r[3]) for r in rows]
