"""What a kernel series changes for a migrating guest beyond masks and values (pure).

The table ``data/kernel-changes.toml``: registers a vCPU's register list
gains from a series on (a destination without them fails the incoming
migration unless the VMM tolerates that), and fields KVM accepts in a write
but rewrites at the first run when their prerequisites are missing.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from qemu_errata.core.catalogue import Catalogue, Field, load_catalogue
from qemu_errata.errors import CatalogueError

KERNEL_CHANGES_FORMAT = "qemu-errata/kernel-changes/1"
_LISTED_KEYS = frozenset({"register", "since", "needs", "evidence"})
_REWRITE_KEYS = frozenset({"register", "field", "since", "becomes", "unless_all", "evidence"})


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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
    text = resources.files("qemu_errata").joinpath("data/kernel-changes.toml").read_text("utf-8")
    return parse_kernel_changes(text, "kernel-changes.toml", load_catalogue())


def parse_kernel_changes(text: str, origin: str, catalogue: Catalogue) -> KernelChanges:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{origin}: not valid TOML: {error}") from None
    extra = sorted(set(document) - {"format", "listed_register", "first_run_rewrite"})
    if document.get("format") != KERNEL_CHANGES_FORMAT or extra:
        raise CatalogueError(f"{origin}: format is not {KERNEL_CHANGES_FORMAT!r} (or key {extra})")
    listed = []
    for index, row in enumerate(document.get("listed_register", [])):
        where = f"{origin}: listed_register[{index}]"
        _check_keys(row, _LISTED_KEYS, where)
        needs = str(row["needs"])
        listed.append(
            ListedRegister(
                register=str(row["register"]),
                since=_series(row["since"], f"{where}.since"),
                needs=_field(needs, catalogue, f"{where}.needs") if needs else None,
                evidence=str(row["evidence"]),
            )
        )
    rewrites = []
    for index, row in enumerate(document.get("first_run_rewrite", [])):
        where = f"{origin}: first_run_rewrite[{index}]"
        _check_keys(row, _REWRITE_KEYS, where)
        prerequisites = row["unless_all"]
        if not isinstance(prerequisites, list) or not isinstance(row["becomes"], int):
            raise CatalogueError(f"{where}: unless_all is a list of REG.FIELD, becomes a number")
        rewrites.append(
            FirstRunRewrite(
                field=_field(f"{row['register']}.{row['field']}", catalogue, where),
                since=_series(row["since"], f"{where}.since"),
                becomes=row["becomes"],
                unless_all=tuple(
                    _field(str(p), catalogue, f"{where}.unless_all") for p in prerequisites
                ),
                evidence=str(row["evidence"]),
            )
        )
    return KernelChanges(tuple(listed), tuple(rewrites))


def _check_keys(row: dict[str, Any], keys: frozenset[str], where: str) -> None:
    extra, missing = sorted(set(row) - keys), sorted(keys - set(row))
    if extra or missing:
        raise CatalogueError(f"{where}: unknown key {extra}, missing key {missing}")


def _series(text: object, where: str) -> tuple[int, int]:
    parts = str(text).split(".")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise CatalogueError(f"{where}: not MAJOR.MINOR: {text!r}")
    return int(parts[0]), int(parts[1])


def _field(qualified: str, catalogue: Catalogue, where: str) -> Field:
    register, _, name = qualified.partition(".")
    try:
        return catalogue[register].field(name)
    except KeyError:
        raise CatalogueError(f"{where}: {qualified} is not a catalogued field") from None
