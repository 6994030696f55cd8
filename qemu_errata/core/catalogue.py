"""The register catalogue: registers, their fields and the rules that combine them.

The single source of truth is the data file ``data/registers.toml``; this
module only reads it and derives what follows from it (masks, the KVM
writable-mask index and the KVM ONE_REG id of each register). It refuses a
table in which some bit of a register is neither in a field nor declared
reserved, or is both, so that a field left out of the table is an error here
rather than bits a pool silently requires to be equal.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping

from qemu_errata.core.data_files import package_toml, parse_table
from qemu_errata.core.record import field as record_field
from qemu_errata.core.record import record
from qemu_errata.core.registers_table import CATALOGUE_FILE, REGISTER_BITS, Kind, Reserved, Rule
from qemu_errata.errors import CatalogueError

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

CATALOGUE_FORMAT = "qemu-errata/register-catalogue/2"
_ALL_ONES = (1 << REGISTER_BITS) - 1

# KVM ONE_REG id of a system register: ARM64 | U64 | KVM_REG_ARM64_SYSREG.
_ONE_REG_SYSREG_BASE = 0x6030000000130000
# KVM's feature ID range: op0 3, op1 in {0, 1, 3}, CRn 0, CRm 0..7, op2 0..7.
_KVM_ID_RANGE_OP1 = (0, 1, 3)
_KVM_ID_RANGE_CRM_MAX = 7


@record
class Encoding:
    """The (op0, op1, CRn, CRm, op2) encoding of a system register."""

    op0: int
    op1: int
    crn: int
    crm: int
    op2: int

    @property
    def sysreg_index(self) -> int:
        """The encoding packed as KVM's sysreg ids and vGIC attributes carry it."""
        return self.op0 << 14 | self.op1 << 11 | self.crn << 7 | self.crm << 3 | self.op2

    @property
    def one_reg_id(self) -> int:
        """The id KVM_GET_ONE_REG/KVM_SET_ONE_REG take for this register."""
        return _ONE_REG_SYSREG_BASE | self.sysreg_index

    @property
    def kvm_mask_index(self) -> int | None:
        """Index in KVM_ARM_GET_REG_WRITABLE_MASKS' array, or None outside the range."""
        in_range = (
            self.op0 == 3
            and self.op1 in _KVM_ID_RANGE_OP1
            and self.crn == 0
            and self.crm <= _KVM_ID_RANGE_CRM_MAX
        )
        if not in_range:
            return None
        op1 = self.op1 & 3
        if op1 == 3:
            op1 -= 1
        return op1 << 6 | self.crm << 3 | self.op2


@record
class Field:
    """One field of a register: its bits, signedness, rule and value names."""

    register: str
    name: str
    msb: int
    lsb: int
    rule: Rule
    signed: bool
    safe: int | None
    # Names are documentation: left out of equality and hashing.
    value_names: Mapping[int, str] = record_field(compare=False)
    # Values KVM refuses whatever the host has (its set_user checks beyond the rule).
    refused: frozenset[int] = frozenset()
    # Values that kernels newer than ``refused_after`` (major, minor) refuse as well.
    refused_later: frozenset[int] = frozenset()
    refused_after: tuple[int, int] | None = None
    # Why KVM refuses those values, in words (shown when a pool needs one of them).
    refused_because: str | None = record_field(default=None, compare=False)
    # Arm's spelling (AARCHMRS) where it differs from ``name`` (Linux's arch/arm64/tools/sysreg).
    arm_name: str | None = record_field(default=None, compare=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.register}.{self.name}"

    @property
    def arm_spelling(self) -> str:
        """The field's name as Arm's register data spells it."""
        return self.arm_name or self.name

    @property
    def width(self) -> int:
        return self.msb - self.lsb + 1

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    def raw(self, register_value: int) -> int:
        """The field's bits of a register value, unsigned."""
        return (register_value & self.mask) >> self.lsb

    def number(self, raw: int) -> int:
        """The field's value as the rule compares it (sign-extended when signed)."""
        if self.signed and raw >> (self.width - 1):
            return raw - (1 << self.width)
        return raw

    def with_raw(self, register_value: int, raw: int) -> int:
        """The register value with this field replaced by ``raw``."""
        return (register_value & ~self.mask) | (raw << self.lsb & self.mask)

    def refused_on(self, kernel: tuple[int, int] | None) -> frozenset[int]:
        """The values KVM refuses outright on a host running ``kernel`` (None: unknown)."""
        if self.refused_after is not None and (kernel is None or kernel > self.refused_after):
            return self.refused | self.refused_later
        return self.refused

    def describe(self, raw: int) -> str:
        """A value for people: the architecture's name and the number, e.g. ``IMP (0x1)``.

        A name that reads as a number itself (IDS ``0x18``, PARange ``48``) is quoted.
        """
        name = self.value_names.get(raw)
        if not name:
            return f"{raw:#x}"
        return f"{name!r} ({raw:#x})" if name[0].isdigit() else f"{name} ({raw:#x})"


@record
class ReservedBits:
    """One declared range of a register's bits that no field describes."""

    msb: int
    lsb: int
    reason: Reserved

    @property
    def mask(self) -> int:
        return ((1 << (self.msb - self.lsb + 1)) - 1) << self.lsb


@record
class Register:
    """One catalogued register with its fields, ordered from the top bit down."""

    name: str
    title: str
    kind: Kind
    encoding: Encoding | None
    explicit_one_reg_id: int | None
    fields: tuple[Field, ...]
    # Every bit outside the fields, as the table declares it (the loader checks the cover).
    reserved: tuple[ReservedBits, ...] = ()
    # A named KVM check on the whole register beyond its field rules (see rules.py).
    kvm_check: str | None = None

    @property
    def one_reg_id(self) -> int:
        if self.explicit_one_reg_id is not None:
            return self.explicit_one_reg_id
        assert self.encoding is not None  # the loader guarantees one of the two
        return self.encoding.one_reg_id

    @property
    def kvm_mask_index(self) -> int | None:
        return self.encoding.kvm_mask_index if self.encoding else None

    @property
    def field_bits(self) -> int:
        """The bits some field covers."""
        bits = 0
        for field in self.fields:
            bits |= field.mask
        return bits

    @property
    def reserved_bits(self) -> int:
        """The bits declared reserved: every bit that is in no field."""
        bits = 0
        for reserved in self.reserved:
            bits |= reserved.mask
        return bits

    def field(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"{self.name} has no field {name}")


class Catalogue(Mapping[str, Register]):
    """Every catalogued register by architectural name, in encoding order."""

    def __init__(self, registers: tuple[Register, ...], source: str) -> None:
        self._registers = {register.name: register for register in registers}
        self.source = source

    def __getitem__(self, name: str) -> Register:
        return self._registers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._registers)

    def __len__(self) -> int:
        return len(self._registers)

    def of_kind(self, *kinds: Kind) -> tuple[Register, ...]:
        return tuple(r for r in self._registers.values() if r.kind in kinds)


@functools.cache
def load_catalogue() -> Catalogue:
    """The catalogue shipped with the package (parsed once per process)."""
    return _catalogue(package_toml("registers.toml", CATALOGUE_FILE), "registers.toml")


def parse_catalogue(text: str, origin: str) -> Catalogue:
    """Build a catalogue from the TOML text of ``origin``, checking its consistency."""
    return _catalogue(parse_table(text, origin, CATALOGUE_FILE), origin)


def _catalogue(document: dict[str, Any], origin: str) -> Catalogue:
    """The catalogue of a registers.toml held to its shape (CATALOGUE_FILE), checked for
    what the shape cannot say (every bit covered once, no register twice)."""
    if document.get("format") != CATALOGUE_FORMAT:
        raise CatalogueError(f"{origin}: format is not {CATALOGUE_FORMAT!r}")
    registers = tuple(_register(entry, origin) for entry in document.get("register", []))
    _check_unique(registers, origin)
    return Catalogue(registers, str(document.get("source", "")))


def _register(entry: dict[str, Any], origin: str) -> Register:
    name = entry["name"]  # CATALOGUE_FILE checked every key's presence and type
    where = f"{origin}: {name}"
    kind = Kind(entry["kind"])
    encoding = Encoding(*entry["encoding"]) if "encoding" in entry else None
    explicit_id = entry.get("kvm_id")
    if encoding is None and explicit_id is None:
        raise CatalogueError(f"{where}: needs an encoding or a kvm_id")
    fields = tuple(_field(name, f, where) for f in entry.get("field", []))
    reserved = tuple(_reserved(entry))
    _check_cover(fields, reserved, where)
    return Register(
        name=name,
        title=str(entry.get("title", "")),
        kind=kind,
        encoding=encoding,
        explicit_one_reg_id=explicit_id,
        fields=tuple(sorted(fields, key=lambda f: -f.msb)),
        reserved=tuple(sorted(reserved, key=lambda r: -r.msb)),
        kvm_check=entry.get("kvm_check"),
    )


def _field(register: str, entry: dict[str, Any], where: str) -> Field:
    name, (msb, lsb), rule = entry["name"], entry["bits"], Rule(entry["rule"])
    safe = entry.get("safe")
    if (rule is Rule.EXACT) != (safe is not None):
        raise CatalogueError(f"{where}.{name}: 'safe' belongs with rule 'exact' and only there")
    names = {int(value, 0): str(text) for value, text in entry.get("values", {}).items()}
    refused = frozenset(int(value) for value in entry.get("refused", []))
    later = entry.get("refused_after_linux", {})
    if (refused or later) and not entry.get("refused_because"):
        raise CatalogueError(f"{where}.{name}: refused values need 'refused_because'")
    return Field(
        register,
        name,
        msb,
        lsb,
        rule,
        bool(entry.get("signed", False)),
        safe,
        names,
        refused,
        frozenset(int(value) for value in later.get("values", [])),
        parse_kernel_version(later["version"]) if later else None,
        entry.get("refused_because"),
        entry.get("arm_name"),
    )


def parse_kernel_version(release: str) -> tuple[int, int] | None:
    """(major, minor) of a kernel release such as ``6.12.57+deb12-arm64``; None if not one."""
    parts = release.split(".", 2)
    if len(parts) < 2 or not parts[0].isdigit():
        return None
    minor = "".join(itertools.takewhile(str.isdigit, parts[1]))
    return (int(parts[0]), int(minor)) if minor else None


def _reserved(entry: dict[str, Any]) -> Iterator[ReservedBits]:
    for reason in Reserved:
        for msb, lsb in entry.get(reason.value, []):  # [msb, lsb] pairs (CATALOGUE_FILE)
            yield ReservedBits(msb, lsb, reason)


def _check_cover(fields: tuple[Field, ...], reserved: tuple[ReservedBits, ...], where: str) -> None:
    """Every bit in exactly one field or reserved range: name the first overlap, or every gap."""
    parts = [(f"field {f.name}", f.mask) for f in fields]
    parts += [(f"{r.reason.value} [{r.msb}:{r.lsb}]", r.mask) for r in reserved]
    seen = 0
    for index, (label, mask) in enumerate(parts):
        if seen & mask:
            other, both = next((o, m & mask) for o, m in parts[:index] if m & mask)
            raise CatalogueError(f"{where}: bits {_ranges(both)} are in both {other} and {label}")
        seen |= mask
    if seen != _ALL_ONES:
        raise CatalogueError(
            f"{where}: bits {_ranges(_ALL_ONES & ~seen)} are in no field"
            f" and not declared reserved ({', '.join(r.value for r in Reserved)})"
        )


def _ranges(bits: int) -> str:
    """The set bits as ranges from the top down, e.g. ``[63:32], [3:0]``."""
    ranges = []
    bit = REGISTER_BITS - 1
    while bit >= 0:
        if bits >> bit & 1:
            msb = bit
            while bit >= 0 and bits >> bit & 1:
                bit -= 1
            ranges.append(f"[{msb}:{bit + 1}]")
        else:
            bit -= 1
    return ", ".join(ranges)


def _check_unique(registers: tuple[Register, ...], origin: str) -> None:
    names: set[str] = set()
    ids: set[int] = set()
    for register in registers:
        if register.name in names or register.one_reg_id in ids:
            raise CatalogueError(f"{origin}: {register.name} is catalogued twice")
        names.add(register.name)
        ids.add(register.one_reg_id)


def reserved_bits(register: Register | None) -> int:
    """The bits a pool requires equal on every host: all of them for an uncatalogued register."""
    return _ALL_ONES if register is None else register.reserved_bits
