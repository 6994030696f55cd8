"""What each VMM can set for a guest: the table ``data/vmms.toml``, read strictly (pure).

A pool can only present what its VMM sets: ID register fields need SYSREG
properties, a pinned MIDR a MIDR property and the writable-identity KVM
capability, a target list of several implementations ``impl-cpu``, and a
firmware pseudo-register such as the PSCI version a property of its own
(QEMU 11.1's ``kvm-psci-version``); otherwise a guest keeps its start host's
value and carries it in migration. Whether an incoming register list may hold
registers the destination kernel lacks is the VMM's choice too.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from qemu_errata.core import tables
from qemu_errata.core.catalogue import Register
from qemu_errata.core.data_files import package_toml, parse_table
from qemu_errata.core.record import field, record, replace
from qemu_errata.core.registers_table import Kind
from qemu_errata.errors import InputError

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

VMM_TABLE_FORMAT = "qemu-errata/vmm-capabilities/1"
_SERIES = ("", "v3", "v10")


_TEXT, _FLAG = tables.Value(str), tables.Value(bool)
_ROW = tables.Row(
    {
        "name": _TEXT,
        "title": _TEXT,
        "qemu_version": tables.Value(str, check=tables.numbers(2, empty=True)),
        "firmware_properties": tables.Value(dict, items=_TEXT),
        "sysreg_series": tables.Value(str, words=_SERIES),
        "sets_midr": _FLAG,
        "impl_cpu": _FLAG,
        "writable_imp_id_regs": _FLAG,
        "tolerates_missing_registers": _FLAG,
        "evidence": _TEXT,
    },
    required=[
        *("name", "title", "qemu_version", "firmware_properties", "sysreg_series"),
        *("sets_midr", "impl_cpu", "writable_imp_id_regs", "tolerates_missing_registers"),
        "evidence",
    ],
    name="name",
    unique=["name"],
)
VMM_FILE = tables.Row(
    {"format": tables.Value(str, words=[VMM_TABLE_FORMAT]), "vmm": tables.Value(list, row=_ROW)},
    required=["format", "vmm"],
)


@record
class Vmm:
    """One VMM's capabilities (a row of the table, or what a QEMU binary showed)."""

    name: str
    title: str
    qemu_version: str
    firmware_properties: Mapping[str, str]
    sysreg_series: str
    sets_midr: bool
    impl_cpu: bool
    writable_imp_id_regs: bool
    tolerates_missing_registers: bool
    evidence: str
    # Where it was found, when discovered on this machine (a QEMU binary's path).
    found_at: str | None = field(default=None, compare=False)

    def describe(self) -> str:
        where = f" at {self.found_at}" if self.found_at else ""
        return f"{self.name} ({self.title}{where})"

    def sets(self, register: Register) -> bool:
        """Whether this VMM can give a guest a value of ``register`` other than its host's."""
        if register.kind in (Kind.FEATURE, Kind.CACHE):
            return bool(self.sysreg_series)
        if register.kind is Kind.IDENTITY:
            return register.name == "MIDR_EL1" and self.sets_midr
        return register.name in self.firmware_properties

    def lacks(self, register: Register) -> str:
        """What this VMM would need to set ``register`` (for refusals)."""
        if register.kind in (Kind.FEATURE, Kind.CACHE):
            return "no SYSREG_* CPU properties (custom host model series)"
        if register.kind is Kind.IDENTITY:
            return "no CPU property setting MIDR_EL1"
        return f"no CPU property setting {register.name}"


@functools.cache
def load_vmm_table() -> tuple[Vmm, ...]:
    """The table shipped with the package, in age order (parsed once per process)."""
    return _vmms(package_toml("vmms.toml", VMM_FILE))


def parse_vmm_table(text: str, origin: str) -> tuple[Vmm, ...]:
    """Every row of ``origin``; CatalogueError names the row and key of anything wrong."""
    return _vmms(parse_table(text, origin, VMM_FILE))


def _vmms(document: dict[str, Any]) -> tuple[Vmm, ...]:
    return tuple(Vmm(**row) for row in document["vmm"])


def vmm_named(name: str) -> Vmm:
    """The row ``name``; InputError lists the known names."""
    for vmm in load_vmm_table():
        if vmm.name == name:
            return vmm
    known = ", ".join(v.name for v in load_vmm_table())
    raise InputError(f"--vmm {name}: unknown VMM (known: {known})")


def newest_known() -> Vmm:
    """The VMM a machine without its own arm64 QEMU decides with: the table's last row."""
    return load_vmm_table()[-1]


def of_release(version: tuple[int, int]) -> Vmm | None:
    """The row of QEMU release ``version`` (major, minor), if the table has one."""
    wanted = f"{version[0]}.{version[1]}"
    return next((v for v in load_vmm_table() if v.qemu_version == wanted), None)


def with_offered(vmm: Vmm, offered: frozenset[str], found_at: str) -> Vmm:
    """``vmm`` corrected by the property names a QEMU binary was seen to carry."""
    firmware = dict(vmm.firmware_properties)
    for register, property_name in FIRMWARE_PROPERTY_NAMES.items():
        if property_name in offered:
            firmware[register] = property_name
    return replace(
        vmm,
        firmware_properties=firmware,
        impl_cpu=vmm.impl_cpu or IMPL_CPU_NAME in offered,
        tolerates_missing_registers=vmm.tolerates_missing_registers or TOLERANCE_NAME in offered,
        found_at=found_at,
    )


PSCI_VERSION = "KVM_REG_ARM_PSCI_VERSION"
# Firmware-register properties a binary is searched for (QEMU's names); verify reads them back.
FIRMWARE_PROPERTY_NAMES = {PSCI_VERSION: "kvm-psci-version"}
IMPL_CPU_NAME = "impl-cpu"
# The trace event of QEMU's merged cpreg migration tolerance (QEMU 11.1 has it).
TOLERANCE_NAME = "tolerate_cpreg_only_in_incoming_stream"
SEARCHED_NAMES = (*FIRMWARE_PROPERTY_NAMES.values(), IMPL_CPU_NAME, TOLERANCE_NAME)
