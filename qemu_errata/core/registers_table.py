"""The shape of ``data/registers.toml`` and the words it holds: how two hosts' values of a
field combine (``Rule``), what a register describes (``Kind``), why bits carry no field
(``Reserved``), and the keys, types and widths of its rows (``CATALOGUE_FILE``).

Apart from the catalogue (core/catalogue.py), the MIDR layout reads registers.toml
(core/midr.py), on the libvirt hook's refusals too: this module imports only ``enum``
and the table reader, so holding the table to its shape costs the hook no more.
"""

from __future__ import annotations

import enum

from qemu_errata.core import tables

REGISTER_BITS = 64


class Rule(enum.Enum):
    """How two hosts' values of a field combine, and which writes KVM accepts."""

    LOWER = "lower"
    HIGHER = "higher"
    HIGHER_OR_ZERO = "higher_or_zero"
    EXACT = "exact"
    FIXED = "fixed"  # no rule in KVM: only the host's own value is accepted
    ANY = "any"  # KVM accepts any value (a pool takes the highest)


class Kind(enum.Enum):
    """What a register describes, which decides how the pool treats it."""

    FEATURE = "feature"  # ID feature register in KVM's writable-mask range
    IDENTITY = "identity"  # MIDR/REVIDR/AIDR: carried by the target list instead
    CACHE = "cache"  # cache geometry registers (CTR_EL0, CLIDR_EL1, DCZID_EL0)
    FIRMWARE = "firmware"  # KVM firmware pseudo-register: every field writable
    GIC = "gic"  # GIC CPU-interface register: every field writable

    @property
    def writable_by_rule(self) -> bool:
        """Whether KVM accepts any rule-safe write of every field, with no mask."""
        return self in (Kind.FIRMWARE, Kind.GIC)

    @property
    def set_by_vmm(self) -> bool:
        """Whether a VMM can, in general, give a new guest a value other than its host's own.

        No VMM dialect has a property for the GIC CPU interface, and only some firmware
        pseudo-registers have one in some VMMs (QEMU 11.1's ``kvm-psci-version``: each
        VMM's ``firmware_properties`` in data/vmms.toml names those): otherwise a guest
        keeps the values of the host it starts on and carries them in migration, where
        the destination's KVM judges them.
        """
        return not self.writable_by_rule

    @property
    def absent_reads_zero(self) -> bool:
        """Whether a host that lacks the register offers nothing (value 0), not an unknown."""
        return self is Kind.FIRMWARE


class Reserved(enum.Enum):
    """Why bits of a register carry no field (the key that declares them in the table)."""

    RES0 = "res0"  # RES0 in the architecture, or undefined in a KVM pseudo-register
    UNREPORTED = "unreported"  # named, but KVM never reports them: they read as 0
    STATE = "state"  # the guest's own control state, not a host capability


# The kinds of register a profile's and a model's ``id_registers`` hold.
ID_REGISTER_KINDS = (Kind.IDENTITY, Kind.FEATURE, Kind.CACHE)


def _msb_first(pair: object) -> str | None:
    return "msb below lsb" if isinstance(pair, list) and pair[0] < pair[1] else None


def _value_names(names: object) -> str | None:
    """Value names are keyed by the field's value: "1", "0x1", "0b0001"."""
    for key in names if isinstance(names, dict) else ():
        try:
            int(key, 0)
        except ValueError:
            return f"{key!r} is not a number"
    return None


def _encoding(encoding: object) -> str | None:
    values = encoding if isinstance(encoding, list) else []
    for value, bits, part in zip(
        values, _ENCODING_BITS, ("op0", "op1", "CRn", "CRm", "op2"), strict=False
    ):
        if value >= 1 << bits:
            return f"{part} {value} does not fit in {bits} bits"
    return None


# The shape of registers.toml (see its header): every key a row may have, and its type.
_TEXT, _VALUE = tables.Value(str), tables.Value(int, bits=REGISTER_BITS)
_BIT_RANGE = tables.Value(list, length=2, items=tables.Value(int, bits=6), check=_msb_first)
# op0, op1, CRn, CRm, op2 of an MRS/MSR encoding, by their widths in the instruction.
_ENCODING_BITS = (2, 3, 4, 4, 3)
_REFUSED_AFTER = tables.Row(
    {"version": _TEXT, "values": tables.Value(list, items=_VALUE)}, required=["version", "values"]
)
_FIELD_ROW = tables.Row(
    {
        "name": _TEXT,
        "bits": _BIT_RANGE,
        "rule": tables.Value(str, words=[rule.value for rule in Rule]),
        "signed": tables.Value(bool),
        "safe": _VALUE,
        "values": tables.Value(dict, items=_TEXT, check=_value_names),
        "refused": tables.Value(list, items=_VALUE),
        "refused_after_linux": tables.Value(dict, row=_REFUSED_AFTER),
        "refused_because": _TEXT,
        "arm_name": _TEXT,
    },
    required=["name", "bits", "rule"],
    name="name",
    unique=["name"],
)
_REGISTER_ROW = tables.Row(
    {
        "name": _TEXT,
        "title": _TEXT,
        "kind": tables.Value(str, words=[kind.value for kind in Kind]),
        "encoding": tables.Value(list, length=5, items=tables.Value(int, bits=4), check=_encoding),
        "kvm_id": _VALUE,
        "kvm_check": _TEXT,
        **{reason.value: tables.Value(list, items=_BIT_RANGE) for reason in Reserved},
        "field": tables.Value(list, row=_FIELD_ROW),
    },
    required=["name", "kind"],
    name="name",
    unique=["name"],
)
CATALOGUE_FILE = tables.Row(
    {"format": _TEXT, "source": _TEXT, "register": tables.Value(list, row=_REGISTER_ROW)},
    required=["format"],
)
