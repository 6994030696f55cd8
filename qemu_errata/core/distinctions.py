"""What separates two look-alike hosts: the facts of one profile another does not share.

Host types (and plan types) are described by their CPUs and kernel ("Arm Neoverse-N1
r4p1, Linux 6.12"); two can read alike while differing in a REVIDR, a timer frequency,
a firmware register or an ID field. Each such one is described with what separates it
from its nearest look-alike (the one it differs from in fewest facts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from qemu_errata.core.catalogue import Catalogue
from qemu_errata.core.profile import HostProfile

# typing only for type checkers: host types are grouped on check's start-up path.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    Kind = TypeVar("Kind")
# How many of the facts that separate two look-alikes a description names.
NAMED_DIFFERENCES = 2
# Among how many look-alikes (the first of its group) the nearest is looked for: a fleet
# of 10,000 REVIDRs of one part would otherwise compare every pair.
NEAREST_AMONG = 4


def distinctions(
    items: Sequence[Kind],
    words: Callable[[Kind], str],
    profile: Callable[[Kind], HostProfile],
    catalogue: Catalogue,
) -> list[str]:
    """Per item, what separates it from its nearest item of the same ``words`` ("" when no
    other item reads alike): ``timer 25 MHz``, ``REVIDR 0x1, timer 25 MHz (+1 more)``.
    The nearest is looked for among the first NEAREST_AMONG items of its words."""
    said = [words(item) for item in items]
    alike: dict[str, list[int]] = {}
    for index, text in enumerate(said):
        alike.setdefault(text, []).append(index)
    result = []
    for index, item in enumerate(items):
        group = alike[said[index]]
        if len(group) == 1:
            result.append("")
            continue
        own = profile(item)
        nearest = min(
            (
                differences(own, profile(items[i]), catalogue)
                for i in group[: NEAREST_AMONG + 1]
                if i != index
            ),
            key=len,
        )
        shown = nearest[:NAMED_DIFFERENCES]
        more = len(nearest) - len(shown)
        result.append(", ".join(shown) + (f" (+{more} more)" if more else ""))
    return result


def differences(own: HostProfile, other: HostProfile, catalogue: Catalogue) -> list[str]:
    """``own``'s facts that ``other`` does not share, in words (``timer 25 MHz``)."""
    words = _implementation_words(own, other)
    if own.timer_frequency_hz != other.timer_frequency_hz:
        words.append(_timer_words(own.timer_frequency_hz))
    for group in ("firmware_registers", "gic_registers", "id_registers"):
        mine, theirs = getattr(own, group), getattr(other, group)
        if mine == theirs:
            continue
        for name in sorted(set(mine) | set(theirs), key=lambda n: (n not in catalogue, n)):
            if mine.get(name) != theirs.get(name):
                words.append(_register_words(name, mine.get(name), theirs.get(name), catalogue))
    if own.writable_masks != other.writable_masks:
        words.append("other writable masks")
    if own.capabilities != other.capabilities:
        words.append("other KVM capabilities")
    return words


def _implementation_words(own: HostProfile, other: HostProfile) -> list[str]:
    """``REVIDR 0x1`` (and ``AIDR``) where the implementations differ only in those."""
    mine = [(i.midr, i.revidr, i.aidr) for i in own.implementations]
    theirs = [(i.midr, i.revidr, i.aidr) for i in other.implementations]
    if mine == theirs:
        return []
    if [m for m, _, _ in mine] != [m for m, _, _ in theirs]:
        return ["other CPU implementations"]
    words = []
    for label, position in (("REVIDR", 1), ("AIDR", 2)):
        values = [entry[position] for entry in mine]
        if values != [entry[position] for entry in theirs]:
            shown = ", ".join("unknown" if v is None else f"{v:#x}" for v in dict.fromkeys(values))
            words.append(f"{label} {shown}")
    return words


def _timer_words(hz: int | None) -> str:
    if hz is None:
        return "timer unknown"
    return f"timer {hz / 1e6:g} MHz"


def _register_words(name: str, own: int | None, other: int | None, catalogue: Catalogue) -> str:
    """``ID_AA64ISAR0_EL1.AES NI (0x0)``: the first field that differs, else the value."""
    if own is None:
        return f"no {name}"
    register = catalogue.get(name)
    if register is None or other is None:
        return f"{name} {own:#x}"
    for fld in register.fields:
        if fld.raw(own) != fld.raw(other):
            return f"{fld.qualified_name} {fld.describe(fld.raw(own))}"
    return f"{name} {own:#x}"
