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


def mentioned_symbols(config: str) -> frozenset[str]:
    """Every CONFIG symbol a .config names, set or not: the symbols that kernel has."""
    return frozenset(re.findall(r"^(?:# )?CONFIG_(\w+)[= ]", config, re.M))


def upstream_release(debian_version: str) -> str:
    """``7.2.13-1~bpo13+1`` -> ``7.2.13``."""
    return debian_version.split("-", maxsplit=1)[0].split("~", maxsplit=1)[0]


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
    rows: list[tuple[str, str, str, str]] = []
    block: list[list[str]] = []
    for line in rst.splitlines():
        if line.startswith("+"):
            if block:
                rows.extend(_block_rows(block))
            block = []
        elif line.startswith("|"):
            block.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    merged: dict[tuple[str, str, str], DocumentedErratum] = {}
    for vendor, component, numbers, symbol in rows:
        kconfig = "" if symbol == "N/A" else symbol
        for written in re.split(r"[,\s]+", numbers):
            if not written:
                continue
            owner, number = _identity(vendor, written, kconfig)
            old = merged.get((owner, number, kconfig))
            components = (*(old.components if old else ()), component)
            merged[(owner, number, kconfig)] = DocumentedErratum(
                owner, tuple(dict.fromkeys(components)), number, kconfig
            )
    return tuple(merged.values())


def _identity(vendor: str, written: str, kconfig: str) -> tuple[str, str]:
    """Whose erratum and its number: ``#826319`` -> 826319, ``E#010001`` -> 010001; a row
    without a number ("N/A") is Arm's erratum its ARM64_ERRATUM_<N> symbol names (another
    vendor's core with an Arm erratum), else named by its Kconfig symbol."""
    number = written.removeprefix("E").strip("#")
    if number != "N/A":
        return vendor, number
    arm = re.fullmatch(r"ARM64_ERRATUM_(\d+)", kconfig)
    return ("ARM", arm.group(1)) if arm else (vendor, kconfig)


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
