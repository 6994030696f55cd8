"""MIDR_EL1 decoding into names people know (``Arm Neoverse-N1 r3p1``).

Implementer and part names come from the data file ``data/cpus.toml``.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources

from qemu_errata.errors import CatalogueError

CPU_NAMES_FORMAT = "qemu-errata/cpu-names/1"


@dataclass(frozen=True)
class CpuNames:
    """Implementer names by code, and part names by (implementer, part number)."""

    implementers: dict[int, str]
    parts: dict[tuple[int, int], str]


@dataclass(frozen=True)
class Midr:
    """The fields of a MIDR_EL1 value (Implementer, Variant, Architecture, PartNum, Revision)."""

    value: int

    @property
    def implementer(self) -> int:
        return self.value >> 24 & 0xFF

    @property
    def variant(self) -> int:
        return self.value >> 20 & 0xF

    @property
    def part(self) -> int:
        return self.value >> 4 & 0xFFF

    @property
    def revision(self) -> int:
        return self.value & 0xF

    def describe(self, names: CpuNames | None = None) -> str:
        """E.g. ``Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1)``."""
        names = names or load_cpu_names()
        implementer = names.implementers.get(self.implementer, f"implementer {self.implementer:#x}")
        part = names.parts.get((self.implementer, self.part), f"part {self.part:#x}")
        return f"{implementer} {part} r{self.variant}p{self.revision} (MIDR {self.value:#x})"


@functools.cache
def load_cpu_names() -> CpuNames:
    """The names shipped with the package (parsed once per process)."""
    text = resources.files("qemu_errata").joinpath("data/cpus.toml").read_text("utf-8")
    return parse_cpu_names(text, "cpus.toml")


def parse_cpu_names(text: str, origin: str) -> CpuNames:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CatalogueError(f"{origin}: not valid TOML: {error}") from None
    if document.get("format") != CPU_NAMES_FORMAT:
        raise CatalogueError(f"{origin}: format is not {CPU_NAMES_FORMAT!r}")
    implementers: dict[int, str] = {}
    parts: dict[tuple[int, int], str] = {}
    for entry in document.get("implementer", []):
        code = int(entry["code"])
        implementers[code] = str(entry["name"])
        for part in entry.get("part", []):
            parts[(code, int(part["num"]))] = str(part["name"])
    return CpuNames(implementers, parts)
