"""Implementation identity: a host's CPU types and a pool's target list.

Guests choose errata workarounds from MIDR/REVIDR (and AIDR), so a pool VM
must be told every implementation it may run on, and may run only there.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from qemu_errata.core.document import CPU_NUMBER_MAX, DocumentReader, parse_register
from qemu_errata.core.record import record

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any


@record(order=True)
class TargetImplementation:
    """One entry of a target list; None for REVIDR/AIDR means "any value"."""

    midr: int
    revidr: int | None
    aidr: int | None

    def matches(self, midr: int, revidr: int | None, aidr: int | None) -> bool:
        """Same MIDR, and same REVIDR/AIDR wherever both sides know them."""
        return self.midr == midr and _agree(self.revidr, revidr) and _agree(self.aidr, aidr)

    def revidr_aidr(self) -> str:
        """``REVIDR 0x0, AIDR any``: how messages show the entry beside its decoded MIDR."""
        return f"REVIDR {_hex_or_any(self.revidr)}, AIDR {_hex_or_any(self.aidr)}"

    def to_json(self) -> dict[str, str | None]:
        return {
            "midr": f"{self.midr:#x}",
            "revidr": None if self.revidr is None else f"{self.revidr:#x}",
            "aidr": None if self.aidr is None else f"{self.aidr:#x}",
        }


@record
class Implementation:
    """One CPU type of a host and the CPU numbers that have it."""

    midr: int
    revidr: int | None  # None: not known (sysfs has no AIDR, for one)
    aidr: int | None
    cpus: tuple[int, ...]

    @property
    def target(self) -> TargetImplementation:
        return TargetImplementation(self.midr, self.revidr, self.aidr)

    def to_json(self) -> dict[str, Any]:
        return {**self.target.to_json(), "cpus": list(self.cpus)}


class TargetImplementations(Sequence[TargetImplementation]):
    """A pool's target list: deduplicated and sorted, so host order never matters."""

    def __init__(self, entries: Iterable[TargetImplementation]) -> None:
        self._entries = tuple(sorted(set(entries), key=_sort_key))

    def __getitem__(self, index: int) -> TargetImplementation:  # type: ignore[override]
        return self._entries[index]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[TargetImplementation]:
        return iter(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TargetImplementations) and self._entries == other._entries

    def __hash__(self) -> int:
        return hash(self._entries)

    def find(self, midr: int, revidr: int | None, aidr: int | None) -> TargetImplementation | None:
        return next((t for t in self._entries if t.matches(midr, revidr, aidr)), None)

    def to_json(self) -> list[dict[str, str | None]]:
        return [entry.to_json() for entry in self._entries]


def _sort_key(entry: TargetImplementation) -> tuple[int, int, int]:
    return (
        entry.midr,
        -1 if entry.revidr is None else entry.revidr,
        -1 if entry.aidr is None else entry.aidr,
    )


def read_implementations(reader: DocumentReader, key: str) -> tuple[Implementation, ...]:
    """A host's implementations, each with a non-empty list of CPU numbers."""
    implementations = []
    cpus_seen: set[int] = set()
    for index, item in enumerate(reader.items(key)):
        where = f"{key}[{index}]"
        reader.check_keys(item, where, (*_IDENTITY, "cpus"))
        midr, revidr, aidr = (_identity(item, where, name, reader) for name in _IDENTITY)
        cpus = item.get("cpus")
        if (
            not isinstance(cpus, list)
            or not cpus
            or not all(
                isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= CPU_NUMBER_MAX
                for c in cpus
            )
        ):
            raise reader.fail(
                f"{where}.cpus",
                f"missing or not a non-empty list of CPU numbers 0-{CPU_NUMBER_MAX}",
            )
        if len(set(cpus)) != len(cpus):
            raise reader.fail(f"{where}.cpus", "a CPU is listed twice")
        if cpus_seen & set(cpus):
            raise reader.fail(f"{where}.cpus", "a CPU is listed under two implementations")
        cpus_seen.update(cpus)
        if midr is None:
            raise reader.fail(f"{where}.midr", "missing")
        implementations.append(Implementation(midr, revidr, aidr, tuple(cpus)))
    if not implementations:
        raise reader.fail(key, "empty: a host has at least one implementation")
    return tuple(implementations)


def read_targets(reader: DocumentReader, key: str) -> TargetImplementations:
    """A target list; REVIDR/AIDR may be null or absent (any value)."""
    entries = []
    for index, item in enumerate(reader.items(key)):
        where = f"{key}[{index}]"
        reader.check_keys(item, where, _IDENTITY)
        midr = _identity(item, where, "midr", reader)
        if midr is None:
            raise reader.fail(f"{where}.midr", "missing")
        entries.append(
            TargetImplementation(
                midr,
                _identity(item, where, "revidr", reader),
                _identity(item, where, "aidr", reader),
            )
        )
    if not entries:
        raise reader.fail(key, "empty: a pool has at least one implementation")
    return TargetImplementations(entries)


_IDENTITY = ("midr", "revidr", "aidr")


def _hex_or_any(value: int | None) -> str:
    return "any" if value is None else f"{value:#x}"


def _agree(known: int | None, other: int | None) -> bool:
    return known is None or other is None or known == other


def _identity(item: Mapping[str, Any], where: str, name: str, reader: DocumentReader) -> int | None:
    raw = item.get(name)
    return None if raw is None else parse_register(raw, f"{where}.{name}", reader)
