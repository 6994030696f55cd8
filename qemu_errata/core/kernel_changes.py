"""What a kernel series changes for a migrating guest beyond masks and values (pure).

The table ``data/kernel-changes.toml``: registers a vCPU's register list
gains from a series on (a destination without them fails the incoming
migration unless the VMM tolerates that), and fields KVM accepts in a write
but rewrites at the first run when their prerequisites are missing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from qemu_errata.core import tables
from qemu_errata.core.catalogue import Catalogue, Field, load_catalogue
from qemu_errata.core.data_files import package_toml, parse_table
from qemu_errata.core.record import record
from qemu_errata.errors import CatalogueError

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

KERNEL_CHANGES_FORMAT = "qemu-errata/kernel-changes/1"
_TEXT, _SERIES = tables.Value(str), tables.Value(str, check=tables.numbers(2))
_LISTED = tables.Row(
    {"register": _TEXT, "since": _SERIES, "needs": _TEXT, "evidence": _TEXT},
    required=["register", "since", "needs", "evidence"],
    name="register",
    unique=["register"],
)
_REWRITE = tables.Row(
    {
        "register": _TEXT,
        "field": _TEXT,
        "since": _SERIES,
        "becomes": tables.Value(int, bits=64),
        "unless_all": tables.Value(list, items=_TEXT),
        "evidence": _TEXT,
    },
    required=["register", "field", "since", "becomes", "unless_all", "evidence"],
    name="field",
)
KERNEL_CHANGES_FILE = tables.Row(
    {
        "format": tables.Value(str, words=[KERNEL_CHANGES_FORMAT]),
        "listed_register": tables.Value(list, row=_LISTED),
        "first_run_rewrite": tables.Value(list, row=_REWRITE),
    },
    required=["format"],
)


@record
class ListedRegister:
    """A register the vCPU's register list holds from kernel ``since`` on (when ``needs``)."""

    register: str
    since: tuple[int, int]
    needs: Field | None
    evidence: str

    def listed(
        self, kernel: tuple[int, int] | None, id_registers: Mapping[str, int]
    ) -> bool | None:
        """Whether a vCPU with ``id_registers`` on ``kernel`` lists it (None: kernel unknown)."""
        if kernel is None:
            return None
        return kernel >= self.since and _nonzero(self.needs, id_registers)


@record
class FirstRunRewrite:
    """A field KVM rewrites to ``becomes`` at the first KVM_RUN unless ``unless_all`` are set."""

    field: Field
    since: tuple[int, int]
    becomes: int
    unless_all: tuple[Field, ...]
    evidence: str

    def result(self, kernel: tuple[int, int] | None, id_registers: Mapping[str, int]) -> int | None:
        """The raw value the guest sees instead of the written one, None when not rewritten."""
        value = id_registers.get(self.field.register)
        if kernel is None or kernel < self.since or value is None:
            return None
        if self.field.raw(value) == self.becomes:
            return None
        if all(_nonzero(f, id_registers) for f in self.unless_all):
            return None
        return self.becomes

    def missing(self, id_registers: Mapping[str, int]) -> list[str]:
        return [f.qualified_name for f in self.unless_all if not _nonzero(f, id_registers)]


@record
class KernelChanges:
    listed_registers: tuple[ListedRegister, ...]
    first_run_rewrites: tuple[FirstRunRewrite, ...]


def _nonzero(field: Field | None, id_registers: Mapping[str, int]) -> bool:
    if field is None:
        return True
    value = id_registers.get(field.register)
    return value is not None and field.raw(value) not in (0, field.mask >> field.lsb)


@functools.cache
def load_kernel_changes() -> KernelChanges:
    """The table shipped with the package (parsed once per process)."""
    document = package_toml("kernel-changes.toml", KERNEL_CHANGES_FILE)
    return _kernel_changes(document, "kernel-changes.toml", load_catalogue())


def parse_kernel_changes(text: str, origin: str, catalogue: Catalogue) -> KernelChanges:
    """The rows of ``text``; CatalogueError names the file, the row and the key."""
    return _kernel_changes(parse_table(text, origin, KERNEL_CHANGES_FILE), origin, catalogue)


def _kernel_changes(document: dict[str, Any], origin: str, catalogue: Catalogue) -> KernelChanges:
    """The rows of a table held to its shape, their fields found in ``catalogue``."""
    listed = []
    for index, row in enumerate(document.get("listed_register", [])):
        where = f"{origin}: listed_register[{index}] {row['register']},"
        listed.append(
            ListedRegister(
                register=row["register"],
                since=_series(row["since"]),
                needs=_field(row["needs"], catalogue, f"{where} key 'needs'")
                if row["needs"]
                else None,
                evidence=row["evidence"],
            )
        )
    rewrites = []
    for index, row in enumerate(document.get("first_run_rewrite", [])):
        where = f"{origin}: first_run_rewrite[{index}] {row['field']},"
        field = _field(f"{row['register']}.{row['field']}", catalogue, f"{where} key 'field'")
        if row["becomes"] > field.mask >> field.lsb:
            raise CatalogueError(
                f"{where} key 'becomes': {row['becomes']:#x} does not fit in "
                f"{field.qualified_name} ({field.msb - field.lsb + 1} bits)"
            )
        rewrites.append(
            FirstRunRewrite(
                field=field,
                since=_series(row["since"]),
                becomes=row["becomes"],
                unless_all=tuple(
                    _field(p, catalogue, f"{where} key 'unless_all'") for p in row["unless_all"]
                ),
                evidence=row["evidence"],
            )
        )
    return KernelChanges(tuple(listed), tuple(rewrites))


def _series(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


def _field(qualified: str, catalogue: Catalogue, where: str) -> Field:
    register, _, name = qualified.partition(".")
    try:
        return catalogue[register].field(name)
    except KeyError:
        raise CatalogueError(f"{where}: {qualified} is not a catalogued field") from None
