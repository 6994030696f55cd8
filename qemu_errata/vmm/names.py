"""QEMU's names for what we set: CPU types, CPU and machine properties (the one place).

Two of them come from QEMU series not merged yet and may still be renamed:
the writable ID register fields of the KVM ``host`` CPU model
(``SYSREG_<REG>_<FIELD>``, Huck/Auger "customizable host model") and the
target implementation list of the ``virt`` machine (``impl-cpu.N.midr``,
``.revidr``, ``.aidr``). The field part of a SYSREG property changed between
versions of the series (QemuSeries); a QEMU at hand can also tell its own
names (``discovered_names``), which beats any spelling known in advance.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from qemu_errata.core.catalogue import Catalogue, Field
from qemu_errata.core.midr import MIDR_REGISTER
from qemu_errata.core.registers_table import Kind

KVM_CPU_MODEL = "host"
MIDR_PROPERTY = "midr"
SYSREG_PREFIX = "SYSREG_"
IMPL_CPU_PROPERTY = "impl-cpu"
IMPL_CPU_KEYS = ("midr", "revidr", "aidr")
# The machine type whose properties carry the target list (virt-X.Y-machine are its versions).
VIRT_MACHINE_TYPE = "virt-machine"

# libvirt's aarch64 <cpu><feature> names (QEMU's -cpu switches of the same names), each
# with the ID register fields that say whether a CPU has it (any of them nonzero: it has).
# ``sve<N>`` (a vector length) counts as ``sve``.
CPU_FEATURE_FIELDS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "sve": (("ID_AA64PFR0_EL1", "SVE"),),
    "pmu": (("ID_AA64DFR0_EL1", "PMUVer"),),
    "pauth": (
        ("ID_AA64ISAR1_EL1", "APA"),
        ("ID_AA64ISAR1_EL1", "API"),
        ("ID_AA64ISAR2_EL1", "APA3"),
    ),
}

GLOBAL_OPTION = "-global"
MACHINE_OPTION = "-machine"
CPU_TYPE_SUFFIX = "-arm-cpu"


class QemuSeries(enum.Enum):
    """A version of the custom host model series, by how it spells a field.

    v3 (2025, Huck) and its downstream backports take Linux's
    arch/arm64/tools/sysreg names (``PARANGE``); v9/v10 (2026, Auger) generate
    them from Arm's register data (``PARange``) and add MIDR_EL1's fields.
    """

    V3 = "v3"
    V10 = "v10"

    def field_name(self, field: Field) -> str:
        return field.arm_spelling if self is QemuSeries.V10 else field.name

    def sets(self, field: Field, catalogue: Catalogue) -> bool:
        """Whether this series has a property for ``field`` at all (KVM's writable ID range)."""
        register = catalogue.get(field.register)
        if register is None or register.kvm_mask_index is None:
            return False
        if register.kind is Kind.IDENTITY:
            return self is QemuSeries.V10 and register.name == MIDR_REGISTER
        return register.kind in (Kind.FEATURE, Kind.CACHE)


DEFAULT_SERIES = QemuSeries.V10


@dataclass(frozen=True)
class SysregNames:
    """The SYSREG property of each field: by a known series, or as one QEMU named them."""

    series: QemuSeries
    # Qualified field name -> property, when read from a QEMU (then the only truth).
    discovered: Mapping[str, str] | None = None
    # Where ``discovered`` comes from, when not a QEMU asked (a VMM known to have none).
    source: str | None = None

    def property_of(self, field: Field, catalogue: Catalogue) -> str | None:
        """The property that sets ``field``, None when this QEMU or series has none."""
        if self.discovered is not None:
            return self.discovered.get(field.qualified_name)
        if not self.series.sets(field, catalogue):
            return None
        return f"{SYSREG_PREFIX}{field.register}_{self.series.field_name(field)}"

    def describe(self) -> str:
        if self.source is not None:
            return self.source
        if self.discovered is not None:
            return "the SYSREG properties this QEMU offers"
        return f"the SYSREG property names of QEMU series {self.series.value}"


def spellings(field: Field) -> tuple[str, ...]:
    """Every property name a QEMU may give ``field``: each series' spelling, with and
    without the prefix reviewers asked to drop (matched exactly: QOM names are case-sensitive)."""
    names = dict.fromkeys(f"{field.register}_{s.field_name(field)}" for s in QemuSeries)
    return tuple(f"{prefix}{name}" for name in names for prefix in (SYSREG_PREFIX, ""))


def discovered_names(offered: Collection[str], catalogue: Catalogue) -> dict[str, str]:
    """Each catalogued field some property of ``offered`` sets, and that property."""
    found = {}
    for register in catalogue.values():
        for field in register.fields:
            match = next((name for name in spellings(field) if name in offered), None)
            if match is not None:
                found[field.qualified_name] = match
    return found


def fields_of_properties(properties: Iterable[str], catalogue: Catalogue) -> dict[str, Field]:
    """The catalogue field each of ``properties`` sets (properties of no field left out)."""
    by_name = {
        name: field
        for register in catalogue.values()
        for field in register.fields
        for name in spellings(field)
    }
    return {name: by_name[name] for name in properties if name in by_name}


def cpu_type(model: str) -> str:
    """The QOM type of a ``-cpu`` model name, e.g. ``cortex-a57-arm-cpu``."""
    return f"{model}{CPU_TYPE_SUFFIX}"


def cpu_model_of_type(typename: str) -> str | None:
    """The ``-cpu`` model name of a QOM CPU type, None if it is not an Arm CPU type."""
    return typename.removesuffix(CPU_TYPE_SUFFIX) if typename.endswith(CPU_TYPE_SUFFIX) else None


def impl_cpu_property(index: int, key: str) -> str:
    """The machine property of entry ``index`` of the target implementation list."""
    return f"{IMPL_CPU_PROPERTY}.{index}.{key}"
