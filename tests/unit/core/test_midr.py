"""MIDR decoding for messages."""

from __future__ import annotations

import pytest

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.midr import Midr, parse_cpu_names
from qemu_errata.errors import CatalogueError


@pytest.mark.parametrize(
    ("midr", "text"),
    [
        (0x414FD0C1, "Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1)"),
        (0x411FD070, "Arm Cortex-A57 r1p0 (MIDR 0x411fd070)"),
        (0x461F0010, "Fujitsu A64FX r1p0 (MIDR 0x461f0010)"),
        (0xC00FAC30, "Ampere AmpereOne (AC03) r0p0 (MIDR 0xc00fac30)"),
        (0x000F0510, "implementer 0x0 part 0x51 r0p0 (MIDR 0xf0510)"),  # QEMU's max
    ],
)
def test_describe(midr: int, text: str) -> None:
    assert Midr(midr).describe() == text


def test_field_layout_matches_the_catalogue() -> None:
    register = load_catalogue()["MIDR_EL1"]
    value = 0x414FD0C1
    midr = Midr(value)
    decoded = {
        "Implementer": midr.implementer,
        "Variant": midr.variant,
        "PartNum": midr.part,
        "Revision": midr.revision,
    }
    assert decoded == {name: register.field(name).raw(value) for name in decoded}


def test_malformed_names_file_is_named() -> None:
    with pytest.raises(CatalogueError, match=r"^x\.json: key 'implementers': missing"):
        parse_cpu_names('{"format": "qemu-errata/cpu-names/1"}', "x.json")
