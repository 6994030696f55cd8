"""MIDR_EL1 decoding into names people know (``Arm Neoverse-N1 r3p1``).

Implementer and part names come from the data file ``data/cpus.json``. The
libvirt hook decodes MIDRs in every refusal, so this module imports only
``json``, ``os`` and the table reader (itself standard library only) and
reads JSON rather than TOML: it stays a few milliseconds. The field layout is
MIDR_EL1's in ``registers.toml``, repeated here for the same reason; a test
pins the two together.
"""

from __future__ import annotations

import json
import os

from qemu_errata.core import tables
from qemu_errata.errors import CatalogueError

CPU_NAMES_FORMAT = "qemu-errata/cpu-names/1"
_CPU_NAMES_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "cpus.json")


class CpuNames:
    """Implementer names by code, and part names by (implementer, part number)."""

    __slots__ = ("implementers", "parts")

    def __init__(self, implementers: dict[int, str], parts: dict[tuple[int, int], str]) -> None:
        self.implementers = implementers
        self.parts = parts


class Midr:
    """The fields of a MIDR_EL1 value (Implementer, Variant, Architecture, PartNum, Revision)."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value

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


_loaded: CpuNames | None = None


def load_cpu_names() -> CpuNames:
    """The names shipped with the package (read once per process)."""
    global _loaded  # noqa: PLW0603 (a one-entry cache without importing functools)
    if _loaded is None:
        with open(_CPU_NAMES_PATH, encoding="utf-8") as stream:
            _loaded = parse_cpu_names(stream.read(), "cpus.json")
    return _loaded


# The shape of cpus.json: implementer codes (8 bits) and part numbers (12 bits) as hex keys.
_IMPLEMENTER = tables.Row(
    {
        "name": tables.Value(str),
        "parts": tables.Value(dict, keys_bits=12, items=tables.Value(str)),
    },
    required=["name"],
)
CPU_NAMES_FILE = tables.Row(
    {
        "format": tables.Value(str),
        "source": tables.Value(str),
        "implementers": tables.Value(dict, keys_bits=8, items=tables.Value(dict, row=_IMPLEMENTER)),
    },
    required=["format", "implementers"],
)


def parse_cpu_names(text: str, origin: str) -> CpuNames:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise CatalogueError(f"{origin}: not JSON: {error}") from None
    tables.check(document, CPU_NAMES_FILE, origin)
    if document["format"] != CPU_NAMES_FORMAT:
        raise CatalogueError(f"{origin}: format is not {CPU_NAMES_FORMAT!r}")
    implementers: dict[int, str] = {}
    parts: dict[tuple[int, int], str] = {}
    for code, entry in document["implementers"].items():
        implementers[int(code, 16)] = entry["name"]
        for number, name in entry.get("parts", {}).items():
            parts[(int(code, 16), int(number, 16))] = name
    return CpuNames(implementers, parts)
