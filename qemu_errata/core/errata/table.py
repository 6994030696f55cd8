"""The errata table, ``data/errata.toml``: its rows as types, and its loader.

What the rows mean, and how the kernel matches them, is said in the package's
docstring (``qemu_errata.core.errata``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qemu_errata.core import tables
from qemu_errata.core.catalogue import Catalogue, Field, load_catalogue, parse_kernel_version
from qemu_errata.core.data_files import parse_toml, read_package_text, read_package_toml
from qemu_errata.core.midr import CpuNames, load_cpu_names, midr_fits, midr_layout
from qemu_errata.errors import CatalogueError

ERRATA_TABLE_FORMAT = "qemu-errata/errata-table/1"
# The first Linux whose guests match errata against the target implementation list.
TARGET_LIST_KERNEL = (6, 15)

_ARMV8 = 0xF  # MIDR_EL1.Architecture of every real CPU; the kernel's model values include it

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
    part_mask: int | None = None  # None: the whole part number
    rv_min: int = 0
    rv_max: int | None = None  # None: every variant and revision
    fixed_rv: int | None = None
    fixed_revidr_mask: int = 0
    seen_midr_only: bool = False
    loop: int | None = None

    def in_range(self, midr: int) -> bool:
        """Same model (implementer, architecture, part bits) and variant/revision in range."""
        layout = midr_layout()
        part_bits = -1 if self.part_mask is None else self.part_mask
        mask = layout.mask("Implementer", "Architecture") | layout.place("PartNum", part_bits)
        model = (
            layout.place("Implementer", self.implementer)
            | layout.place("Architecture", _ARMV8)
            | layout.place("PartNum", self.part)
        )
        return midr & mask == model & mask and self.rv_min <= _rv_bits(midr) <= self.rv_top

    @property
    def rv_top(self) -> int:
        """The highest variant/revision in range."""
        return midr_layout().mask("Variant", "Revision") if self.rv_max is None else self.rv_max

    def affects(self, midr: int, revidr: int | None) -> bool:
        """In range and not fixed by a REVIDR bit (an unknown REVIDR fixes nothing)."""
        if not self.in_range(midr):
            return False
        fixed = (
            self.fixed_rv == _rv_bits(midr)
            and revidr is not None
            and revidr & self.fixed_revidr_mask != 0
        )
        return not fixed

    @property
    def all_versions(self) -> bool:
        return self.rv_min == 0 and self.rv_top == midr_layout().mask("Variant", "Revision")

    def describe(self, names: CpuNames | None = None) -> str:
        """E.g. ``Arm Cortex-A76 r0p0-r3p1`` or ``Arm Neoverse-N1 all versions``."""
        names = names or load_cpu_names()
        implementer = names.implementers.get(self.implementer, f"implementer {self.implementer:#x}")
        if self.part_mask is not None:
            part = f"parts {self.part:#05x} (mask {self.part_mask:#05x})"
        else:
            part = names.parts.get((self.implementer, self.part), f"part {self.part:#05x}")
        if self.all_versions:
            versions = "all versions"
        else:
            versions = f"{_rv_name(self.rv_min)}-{_rv_name(self.rv_top)}"
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
    return errata_table_from_document(read_package_toml("errata.toml"), "errata.toml")


def load_table_capabilities() -> tuple[str, ...]:
    """The kernel capability names the table was built from (data/errata-capabilities.txt)."""
    text = read_package_text("errata-capabilities.txt")
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def parse_errata_table(text: str, origin: str, catalogue: Catalogue | None = None) -> ErrataTable:
    """Build the table from the TOML text of ``origin``; CatalogueError naming a bad row."""
    return errata_table_from_document(parse_toml(text, origin), origin, catalogue)


def errata_table_from_document(
    document: dict[str, Any], origin: str, catalogue: Catalogue | None = None
) -> ErrataTable:
    """The table of a parsed errata.toml: its shape first (ERRATA_FILE), then its rows."""
    catalogue = catalogue or load_catalogue()
    tables.check(document, ERRATA_FILE, origin)
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
        part_mask=entry.get("part_mask"),
        rv_min=_rv(entry["from"]) if "from" in entry else 0,
        rv_max=_rv(entry["to"]) if "to" in entry else None,
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
    """``r3p1`` as the kernel's variant/revision bits (MIDR_EL1's Variant and Revision)."""
    layout = midr_layout()
    variant, _, revision = name.removeprefix("r").partition("p")
    v, r = int(variant), int(revision)
    top_v, top_r = (1 << layout.width("Variant")) - 1, (1 << layout.width("Revision")) - 1
    if not (0 <= v <= top_v and 0 <= r <= top_r) or not name.startswith("r"):
        raise ValueError(f"{name!r} is not a revision rNpM with N in 0..{top_v}, M in 0..{top_r}")
    return layout.place("Variant", v) | layout.place("Revision", r)


def _rv_bits(midr: int) -> int:
    """The variant/revision bits of a MIDR, as _rv gives them."""
    return midr & midr_layout().mask("Variant", "Revision")


def _rv_name(rv: int) -> str:
    layout = midr_layout()
    return f"r{layout.take(rv, 'Variant')}p{layout.take(rv, 'Revision')}"


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


# The shape of errata.toml (see its header): every key a row may have, and its type.
def _revision_problem(name: object) -> str | None:
    try:
        _rv(str(name))
    except ValueError as error:
        return str(error)
    return None


def _revision_order(name: object) -> int:
    return _rv(str(name))


def _version_problem(text: object) -> str | None:
    if text == "" or parse_kernel_version(str(text)) is not None:
        return None
    return f"{text!r} is not a kernel version such as 6.12"


_REVISION = tables.Value(str, check=_revision_problem)
_VERSION = tables.Value(str, check=_version_problem)
_STRINGS = tables.Value(list, items=tables.Value(str))
_RANGE_ROW = tables.Row(
    {
        "implementer": tables.Value(int, check=midr_fits("Implementer")),
        "part": tables.Value(int, check=midr_fits("PartNum")),
        "part_mask": tables.Value(int, check=midr_fits("PartNum")),
        "from": _REVISION,
        "to": _REVISION,
        "fixed": tables.Value(
            dict,
            row=tables.Row(
                {"revision": _REVISION, "revidr_mask": tables.Value(int, bits=32)},
                required=["revision", "revidr_mask"],
            ),
        ),
        "seen_midr_only": tables.Value(bool),
        "loop": tables.Value(int, bits=8),
    },
    required=["implementer", "part"],
    ranges=[("from", "to", _revision_order)],
)
_RANGES = tables.Value(list, row=_RANGE_ROW)
_FIELD_TEST = tables.Value(
    dict,
    row=tables.Row(
        {
            "register": tables.Value(str),
            "field": tables.Value(str),
            "min": tables.Value(int, bits=4),
        },
        required=["register", "field", "min"],
    ),
)
_ERRATUM_ROW = tables.Row(
    {
        "id": tables.Value(str),
        "vendor": tables.Value(str),
        "numbers": tables.Value(list, items=tables.Value(int)),
        "capability": tables.Value(str),
        "kconfig": tables.Value(str),
        "since": _VERSION,
        "stable": tables.Value(list, items=_VERSION),
        "left_out_by": _STRINGS,
        "log": tables.Value(str),
        "older_logs": _STRINGS,
        "applies": tables.Value(str, words=APPLIES),
        "matched_by": tables.Value(str, words=MATCHED_BY),
        "affects": _RANGES,
        "requires": tables.Value(list, items=_FIELD_TEST),
        "matters_only_if": _FIELD_TEST,
        "effect": tables.Value(str),
        "source": tables.Value(str),
    },
    required=[
        "id",
        "vendor",
        "capability",
        "kconfig",
        "since",
        "log",
        "applies",
        "matched_by",
        "affects",
        "effect",
        "source",
    ],
    name="id",
    unique=["id"],
)
_MITIGATION_ROW = tables.Row(
    {
        "id": tables.Value(str),
        "capability": tables.Value(str),
        "since": _VERSION,
        "log": tables.Value(str),
        "older_logs": _STRINGS,
        "unaffected_if": _FIELD_TEST,
        "enabled_if": _FIELD_TEST,
        "firmware_unaffected_if": _FIELD_TEST,
        "safe": _RANGES,
        "affected": _RANGES,
        "otherwise": tables.Value(str, words=OTHERWISE),
        "effect": tables.Value(str),
        "source": tables.Value(str),
    },
    required=[
        "id",
        "capability",
        "since",
        "log",
        "safe",
        "affected",
        "otherwise",
        "effect",
        "source",
    ],
    name="id",
    unique=["id"],
)
ERRATA_FILE = tables.Row(
    {
        "table": tables.Value(
            dict,
            row=tables.Row(
                {"format": tables.Value(str), "linux": tables.Value(str)}, required=["format"]
            ),
        ),
        "erratum": tables.Value(list, row=_ERRATUM_ROW),
        "mitigation": tables.Value(list, row=_MITIGATION_ROW),
    },
    required=["table"],
)
