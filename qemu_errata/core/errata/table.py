"""The errata table, ``data/errata.toml``: its rows as types, and its loader.

What the rows mean, and how the kernel matches them, is said in the package's
docstring (``qemu_errata.core.errata``).
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from qemu_errata.core.catalogue import Catalogue, Field, load_catalogue, parse_kernel_version
from qemu_errata.core.midr import CpuNames, load_cpu_names
from qemu_errata.errors import CatalogueError

ERRATA_TABLE_FORMAT = "qemu-errata/errata-table/1"
# The first Linux whose guests match errata against the target implementation list.
TARGET_LIST_KERNEL = (6, 15)

_IMPLEMENTER_ARCHITECTURE = 0xFF0F0000
_ARCHITECTURE_ARMV8 = 0xF << 16  # every real MIDR; the kernel's model values include it
_VARIANT_REVISION = 0x00F0000F

# Who acts on an erratum: a guest kernel ("guest"), KVM although a guest detects it too
# ("hypervisor"), a kernel at EL2 only ("host"), a device, or nobody ("none").
APPLIES = ("guest", "hypervisor", "host", "device", "none")
MATCHED_BY = ("midr", "midr-seen", "cpufeature", "other", "none")
_GUEST_DETECTS = frozenset({"guest", "hypervisor"})
FROM_MIDR = frozenset({"midr", "midr-seen", "cpufeature"})
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
    numbers: tuple[int, ...]
    capability: str
    kconfig: str
    since: tuple[int, int] | None
    stable: tuple[tuple[int, int], ...]  # older series whose later point releases carry it
    left_out_by: tuple[str, ...]  # distributions whose kernels are built without it
    log: str
    older_logs: tuple[str, ...]
    applies: str
    matched_by: str
    affects: tuple[CpuRange, ...]
    requires: tuple[FieldTest, ...]
    matters_only_if: FieldTest | None
    effect: str
    source: str

    @property
    def guest_detects(self) -> bool:
        """A guest kernel detects (and logs) it when its CPUs match."""
        return self.applies in _GUEST_DETECTS and self.matched_by in FROM_MIDR


@dataclass(frozen=True)
class Mitigation:
    """A Spectre/Meltdown mitigation whose need the kernel decides partly from MIDR lists."""

    id: str
    capability: str
    since: tuple[int, int] | None
    log: str
    older_logs: tuple[str, ...]
    unaffected_if: FieldTest | None
    enabled_if: FieldTest | None
    firmware_unaffected_if: FieldTest | None
    safe: tuple[CpuRange, ...]
    affected: tuple[CpuRange, ...]
    otherwise: str
    effect: str
    source: str


@dataclass(frozen=True)
class ErrataTable:
    errata: tuple[Erratum, ...]
    mitigations: tuple[Mitigation, ...]
    linux: str

    @property
    def capabilities(self) -> frozenset[str]:
        """The kernel capabilities the table names."""
        named = [e.capability for e in self.errata] + [m.capability for m in self.mitigations]
        return frozenset(c for c in named if c)

    def by_log(self, description: str) -> tuple[Erratum | Mitigation, ...]:
        """The rows a kernel's "CPU features: detected: <description>" line stands for."""
        rows: list[Erratum | Mitigation] = [*self.errata, *self.mitigations]
        return tuple(r for r in rows if description == r.log or description in r.older_logs)


@functools.cache
def load_errata_table() -> ErrataTable:
    """The table shipped with the package (parsed once per process)."""
    text = resources.files("qemu_errata").joinpath("data/errata.toml").read_text("utf-8")
    return parse_errata_table(text, "errata.toml")


def load_table_capabilities() -> tuple[str, ...]:
    """The kernel capability names the table was built from (data/errata-capabilities.txt)."""
    text = (
        resources.files("qemu_errata").joinpath("data/errata-capabilities.txt").read_text("utf-8")
    )
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def parse_errata_table(text: str, origin: str, catalogue: Catalogue | None = None) -> ErrataTable:
    """Build the table from the TOML text of ``origin``; CatalogueError naming a bad row."""
    catalogue = catalogue or load_catalogue()
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{origin}: not valid TOML: {error}") from None
    header = document.get("table", {})
    if header.get("format") != ERRATA_TABLE_FORMAT:
        raise CatalogueError(f"{origin}: [table].format is not {ERRATA_TABLE_FORMAT!r}")
    errata = tuple(
        _row(origin, f"erratum[{i}]", entry, lambda e: _erratum(e, catalogue))
        for i, entry in enumerate(document.get("erratum", []))
    )
    mitigations = tuple(
        _row(origin, f"mitigation[{i}]", entry, lambda e: _mitigation(e, catalogue))
        for i, entry in enumerate(document.get("mitigation", []))
    )
    _check_unique((e.id for e in errata), origin)
    _check_unique((m.id for m in mitigations), origin)
    return ErrataTable(errata, mitigations, str(header.get("linux", "")))


def _row(origin: str, where: str, entry: dict[str, Any], build: Any) -> Any:
    try:
        return build(entry)
    except (KeyError, TypeError, ValueError) as error:
        name = entry.get("id", where) if isinstance(entry, dict) else where
        raise CatalogueError(f"{origin}: {name}: malformed row: {error!r}") from None


def _erratum(entry: dict[str, Any], catalogue: Catalogue) -> Erratum:
    applies, matched_by = str(entry["applies"]), str(entry["matched_by"])
    if applies not in APPLIES or matched_by not in MATCHED_BY:
        raise ValueError(f"applies {applies!r} / matched_by {matched_by!r} not known")
    only_if = entry.get("matters_only_if")
    return Erratum(
        id=str(entry["id"]),
        vendor=str(entry["vendor"]),
        numbers=tuple(int(n) for n in entry.get("numbers", [])),
        capability=str(entry["capability"]),
        kconfig=str(entry["kconfig"]),
        since=_version(entry["since"]),
        stable=tuple(_series(str(s)) for s in entry.get("stable", [])),
        left_out_by=tuple(str(s) for s in entry.get("left_out_by", [])),
        log=str(entry["log"]),
        older_logs=tuple(str(s) for s in entry.get("older_logs", [])),
        applies=applies,
        matched_by=matched_by,
        affects=tuple(_range(r) for r in entry["affects"]),
        requires=tuple(_field_test(t, catalogue) for t in entry.get("requires", [])),
        matters_only_if=None if only_if is None else _field_test(only_if, catalogue),
        effect=str(entry["effect"]),
        source=str(entry["source"]),
    )


def _mitigation(entry: dict[str, Any], catalogue: Catalogue) -> Mitigation:
    otherwise = str(entry["otherwise"])
    if otherwise not in OTHERWISE:
        raise ValueError(f"otherwise {otherwise!r} not known")
    unaffected_if, enabled_if = entry.get("unaffected_if"), entry.get("enabled_if")
    firmware = entry.get("firmware_unaffected_if")
    return Mitigation(
        id=str(entry["id"]),
        capability=str(entry["capability"]),
        since=_version(entry["since"]),
        log=str(entry["log"]),
        older_logs=tuple(str(s) for s in entry.get("older_logs", [])),
        unaffected_if=None if unaffected_if is None else _field_test(unaffected_if, catalogue),
        enabled_if=None if enabled_if is None else _field_test(enabled_if, catalogue),
        firmware_unaffected_if=None if firmware is None else _field_test(firmware, catalogue),
        safe=tuple(_range(r) for r in entry["safe"]),
        affected=tuple(_range(r) for r in entry["affected"]),
        otherwise=otherwise,
        effect=str(entry["effect"]),
        source=str(entry["source"]),
    )


def _range(entry: dict[str, Any]) -> CpuRange:
    fixed = entry.get("fixed")
    return CpuRange(
        implementer=int(entry["implementer"]),
        part=int(entry["part"]),
        part_mask=int(entry.get("part_mask", 0xFFF)),
        rv_min=_rv(entry["from"]) if "from" in entry else 0,
        rv_max=_rv(entry["to"]) if "to" in entry else _VARIANT_REVISION,
        fixed_rv=None if fixed is None else _rv(fixed["revision"]),
        fixed_revidr_mask=0 if fixed is None else int(fixed["revidr_mask"]),
        seen_midr_only=bool(entry.get("seen_midr_only", False)),
        loop=entry.get("loop"),
    )


def _field_test(entry: dict[str, Any], catalogue: Catalogue) -> FieldTest:
    register = catalogue.get(str(entry["register"]))
    if register is None:
        raise ValueError(f"register {entry['register']!r} is not catalogued")
    return FieldTest(register.field(str(entry["field"])), int(entry["min"]))


def _rv(name: str) -> int:
    """``r3p1`` as the kernel's variant/revision bits (variant [23:20], revision [3:0])."""
    variant, _, revision = name.removeprefix("r").partition("p")
    v, r = int(variant), int(revision)
    if not (0 <= v <= 0xF and 0 <= r <= 0xF) or not name.startswith("r"):
        raise ValueError(f"{name!r} is not a revision rNpM with N, M in 0..15")
    return v << 20 | r


def _rv_name(rv: int) -> str:
    return f"r{rv >> 20 & 0xF}p{rv & 0xF}"


def _version(text: str) -> tuple[int, int] | None:
    if text == "":
        return None
    version = parse_kernel_version(text)
    if version is None:
        raise ValueError(f"since {text!r} is not a kernel version")
    return version


def _series(text: str) -> tuple[int, int]:
    version = _version(text)
    if version is None:
        raise ValueError("stable: an empty series")
    return version


def _check_unique(ids: Iterable[str], origin: str) -> None:
    seen: set[str] = set()
    for name in ids:
        if name in seen:
            raise CatalogueError(f"{origin}: {name!r} appears twice")
        seen.add(name)
