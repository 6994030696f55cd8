"""MIDR_EL1: its field layout, and its decoding into names people know (``Arm Neoverse-N1 r3p1``).

The layout is MIDR_EL1's in ``registers.toml``, the one source of register
layouts, read here from the parsed table (core/data_files.py) so that
nothing else repeats a shift or a mask. Implementer and part names come from
``data/cpus.json``. The libvirt hook decodes MIDRs in every refusal, so this
module imports only ``json``, the standard-library-only table reader and
registers.toml's shape, and reads JSON: it stays a few milliseconds.
"""

from __future__ import annotations

import json

from qemu_errata.core import tables
from qemu_errata.core.data_files import package_toml, read_package_text
from qemu_errata.core.registers_table import CATALOGUE_FILE
from qemu_errata.errors import CatalogueError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# The register's name, wherever code names it.
MIDR_REGISTER = "MIDR_EL1"
REVIDR_REGISTER = "REVIDR_EL1"
CPU_NAMES_FORMAT = "qemu-errata/cpu-names/1"


class CpuNames:
    """Implementer names by code, and part names by (implementer, part number)."""

    __slots__ = ("implementers", "parts")

    def __init__(self, implementers: dict[int, str], parts: dict[tuple[int, int], str]) -> None:
        self.implementers = implementers
        self.parts = parts


class MidrLayout:
    """MIDR_EL1's fields (Implementer, Variant, Architecture, PartNum, Revision) as
    registers.toml lays them out: each one's shift and width."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, tuple[int, int]]) -> None:
        self.fields = fields

    def _field(self, name: str) -> tuple[int, int]:
        try:
            return self.fields[name]
        except KeyError:
            raise CatalogueError(f"registers.toml: {MIDR_REGISTER} has no field {name}") from None

    def width(self, name: str) -> int:
        return self._field(name)[1]

    def take(self, value: int, name: str) -> int:
        """The raw value of field ``name`` in the MIDR ``value``."""
        shift, width = self._field(name)
        return value >> shift & (1 << width) - 1

    def place(self, name: str, raw: int) -> int:
        """``raw`` in field ``name``'s place (the other bits 0)."""
        shift, width = self._field(name)
        return (raw & (1 << width) - 1) << shift

    def mask(self, *names: str) -> int:
        """The bits of the fields ``names``."""
        mask = 0
        for name in names:
            mask |= self.place(name, -1)
        return mask


_layout: MidrLayout | None = None


def midr_layout() -> MidrLayout:
    """MIDR_EL1's layout from registers.toml (read once per process)."""
    global _layout  # noqa: PLW0603 (a one-entry cache without importing functools)
    if _layout is None:
        document = package_toml("registers.toml", CATALOGUE_FILE)
        registers = [r for r in document.get("register", []) if r.get("name") == MIDR_REGISTER]
        if not registers:
            raise CatalogueError(f"registers.toml: no {MIDR_REGISTER}")
        _layout = MidrLayout(
            {
                f["name"]: (f["bits"][1], f["bits"][0] - f["bits"][1] + 1)
                for f in registers[0]["field"]
            }
        )
    return _layout


def midr_fits(name: str) -> Callable[[object], str | None]:
    """A table check: the value fits MIDR_EL1's field ``name`` (for tables.Value's check)."""

    def fits(value: object) -> str | None:
        width = midr_layout().width(name)
        if isinstance(value, int) and not 0 <= value < 1 << width:
            return f"{value:#x} does not fit in {MIDR_REGISTER}.{name} ({width} bits)"
        return None

    return fits


class Midr:
    """The fields of a MIDR_EL1 value (Implementer, Variant, Architecture, PartNum, Revision)."""

    __slots__ = ("value",)

    def __init__(self, value: int) -> None:
        self.value = value

    @property
    def implementer(self) -> int:
        return midr_layout().take(self.value, "Implementer")

    @property
    def variant(self) -> int:
        return midr_layout().take(self.value, "Variant")

    @property
    def part(self) -> int:
        return midr_layout().take(self.value, "PartNum")

    @property
    def revision(self) -> int:
        return midr_layout().take(self.value, "Revision")

    def name(self, names: CpuNames | None = None) -> str:
        """E.g. ``Arm Neoverse-N1 r4p1``."""
        names = names or load_cpu_names()
        implementer = names.implementers.get(self.implementer, f"implementer {self.implementer:#x}")
        part = names.parts.get((self.implementer, self.part), f"part {self.part:#x}")
        return f"{implementer} {part} r{self.variant}p{self.revision}"

    def describe(self, names: CpuNames | None = None) -> str:
        """E.g. ``Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1)``."""
        return f"{self.name(names)} (MIDR {self.value:#x})"


_loaded: CpuNames | None = None


def load_cpu_names() -> CpuNames:
    """The names shipped with the package (read once per process)."""
    global _loaded  # noqa: PLW0603 (a one-entry cache without importing functools)
    if _loaded is None:
        _loaded = parse_cpu_names(read_package_text("cpus.json"), "cpus.json")
    return _loaded


# The shape of cpus.json: implementer codes and part numbers as hex keys, as wide as MIDR_EL1's.
_IMPLEMENTER = tables.Row(
    {
        "name": tables.Value(str),
        "parts": tables.Value(
            dict,
            key_check=tables.hex_key(lambda: midr_layout().width("PartNum")),
            items=tables.Value(str),
        ),
    },
    required=["name"],
)
CPU_NAMES_FILE = tables.Row(
    {
        "format": tables.Value(str),
        "source": tables.Value(str),
        "implementers": tables.Value(
            dict,
            key_check=tables.hex_key(lambda: midr_layout().width("Implementer")),
            items=tables.Value(dict, row=_IMPLEMENTER),
        ),
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
