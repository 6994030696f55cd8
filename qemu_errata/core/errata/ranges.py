"""The implementation ranges of errata.toml (``affects``, a list's ``ranges``) as the kernel
matches them: implementer, part (or a part family under a mask), variant/revision from/to
("rVpR", inclusive) and a revision fixed by REVIDR bits. MIDR_EL1's layout is the register
table's (core/midr.py).
"""

from __future__ import annotations

import functools

from qemu_errata.core.midr import CpuNames, load_cpu_names, midr_layout
from qemu_errata.core.record import record

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

_ARMV8 = 0xF  # MIDR_EL1.Architecture of every real CPU; the kernel's model values include it


@record
class CpuRange:
    """One implementation range of an erratum or mitigation list, as the kernel matches it."""

    implementer: int
    part: int
    part_mask: int | None = None  # None: the whole part number
    rv_min: int = 0
    rv_max: int | None = None  # None: every variant and revision
    fixed_rv: int | None = None
    fixed_revidr_mask: int = 0
    seen_midr_only: bool = False
    loop: int | None = None

    def in_range(self, midr: int) -> bool:
        """Same model (implementer, architecture, part bits) and variant/revision in range."""
        mask, model, rv_bits = self._match
        return midr & mask == model and self.rv_min <= midr & rv_bits <= self.rv_top

    @functools.cached_property
    def _match(self) -> tuple[int, int, int]:
        """The model's mask, its bits under that mask and the variant/revision bits, laid out
        once per range: plan judges every listed CPU against every list for each pool."""
        layout = midr_layout()
        part_bits = -1 if self.part_mask is None else self.part_mask
        mask = layout.mask("Implementer", "Architecture") | layout.place("PartNum", part_bits)
        model = (
            layout.place("Implementer", self.implementer)
            | layout.place("Architecture", _ARMV8)
            | layout.place("PartNum", self.part)
        )
        return mask, model & mask, layout.mask("Variant", "Revision")

    @property
    def rv_top(self) -> int:
        """The highest variant/revision in range."""
        return self._match[2] if self.rv_max is None else self.rv_max

    def affects(self, midr: int, revidr: int | None) -> bool:
        """In range and not fixed by a REVIDR bit (an unknown REVIDR fixes nothing)."""
        return self.in_range(midr) and not self.fixed(midr, revidr)

    def fixed(self, midr: int, revidr: int | None) -> bool:
        """The revision the range's REVIDR fix names, with one of its bits set."""
        return (
            self.fixed_rv == _rv_bits(midr)
            and revidr is not None
            and revidr & self.fixed_revidr_mask != 0
        )

    @property
    def all_versions(self) -> bool:
        return self.rv_min == 0 and self.rv_top == midr_layout().mask("Variant", "Revision")

    def describe(self, names: CpuNames | None = None) -> str:
        """E.g. ``Arm Cortex-A76 r0p0-r3p1`` or ``Arm Neoverse-N1 all versions``."""
        names = names or load_cpu_names()
        implementer = names.implementers.get(self.implementer, f"implementer {self.implementer:#x}")
        if self.part_mask is not None:
            part = f"parts {self.part:#05x} (mask {self.part_mask:#05x})"
        else:
            part = names.parts.get((self.implementer, self.part), f"part {self.part:#05x}")
        if self.all_versions:
            versions = "all versions"
        else:
            versions = f"{_rv_name(self.rv_min)}-{_rv_name(self.rv_top)}"
            if self.rv_min == self.rv_max:
                versions = _rv_name(self.rv_min)
        fixed = ""
        if self.fixed_rv is not None:
            fixed = f" ({_rv_name(self.fixed_rv)} fixed when REVIDR & {self.fixed_revidr_mask:#x})"
        return f"{implementer} {part} {versions}{fixed}"


def cpu_range(entry: dict[str, Any]) -> CpuRange:
    """A range row of errata.toml (held to its shape by core/errata/schema.py)."""
    fixed = entry.get("fixed")
    part_mask = int(entry.get("part_mask", 0xFFF))
    return CpuRange(
        implementer=int(entry["implementer"]),
        part=int(entry["part"]),
        part_mask=part_mask,
        rv_min=revision_bits(entry["from"]) if "from" in entry else 0,
        rv_max=revision_bits(entry["to"]) if "to" in entry else None,
        fixed_rv=None if fixed is None else revision_bits(fixed["revision"]),
        fixed_revidr_mask=0 if fixed is None else int(fixed["revidr_mask"]),
        # The kernel's part-family match (Kryo) reads the CPU's own MIDR, never the list.
        seen_midr_only=part_mask != 0xFFF,
        loop=entry.get("loop"),
    )


def revision_problem(name: object) -> str | None:
    """Why ``name`` is not a revision ``rNpM`` that fits MIDR_EL1's Variant and Revision."""
    layout = midr_layout()
    top_v, top_r = (1 << layout.width("Variant")) - 1, (1 << layout.width("Revision")) - 1
    variant, _, revision = str(name).removeprefix("r").partition("p")
    fits = all(p.isascii() and p.isdigit() for p in (variant, revision))
    if not (
        fits and str(name).startswith("r") and int(variant) <= top_v and int(revision) <= top_r
    ):
        return f"{name!r} is not a revision rNpM with N in 0..{top_v}, M in 0..{top_r}"
    return None


def revision_bits(name: object) -> int:
    """``r3p1`` as the kernel's variant/revision bits (MIDR_EL1's Variant and Revision)."""
    layout = midr_layout()
    variant, _, revision = str(name).removeprefix("r").partition("p")
    return layout.place("Variant", int(variant)) | layout.place("Revision", int(revision))


def _rv_bits(midr: int) -> int:
    """The variant/revision bits of a MIDR, as revision_bits gives them."""
    return midr & midr_layout().mask("Variant", "Revision")


def _rv_name(rv: int) -> str:
    layout = midr_layout()
    return f"r{layout.take(rv, 'Variant')}p{layout.take(rv, 'Revision')}"
