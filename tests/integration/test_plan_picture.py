"""``plan --picture`` rendered by a real SVG renderer (librsvg's rsvg-convert), pixels checked."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from support.cli import run_cli

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.record import replace
from qemu_errata.files import write_json
from qemu_errata.reports.plan_picture import (
    APART,
    CELL,
    CHEAP,
    COSTLY,
    OUTLINE,
    SAME,
    TOP,
)

RSVG = shutil.which("rsvg-convert")
FIVE = [
    "kvm-6.12-neoverse-n1",
    "kvm-6.12-cortex-a76",
    "kvm-6.12-cortex-a72",
    "kvm-6.12-cortex-a57",
]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(RSVG is None, reason="rsvg-convert not installed (librsvg2-bin)"),
]


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def lowered_a76(path: Path) -> Path:
    """A Cortex-A76 host whose KVM offers no DotProduct and no RDM (both lowered to NI)."""
    a76 = load_embedded_profile("kvm-6.12-cortex-a76")
    isar0 = load_catalogue()["ID_AA64ISAR0_EL1"]
    value = a76.id_registers["ID_AA64ISAR0_EL1"]
    for name in ("DP", "RDM"):
        value = isar0.field(name).with_raw(value, 0)
    lowered = replace(
        a76, host="a76-lowered", id_registers={**a76.id_registers, "ID_AA64ISAR0_EL1": value}
    )
    write_json(path, lowered.to_json())
    return path


def test_the_picture_renders_with_cells_coloured_and_pools_outlined(tmp_path: Path) -> None:
    picture = tmp_path / "plan.svg"
    sixth = lowered_a76(tmp_path.parent / f"{tmp_path.name}-a76-lowered.json")
    done = run_cli("plan", *FIVE[:2], *FIVE[2:], sixth, "kvm-6.12-a64fx", "--picture", picture)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f"Picture written to {picture}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["plan.svg"]  # no temporary file left
    svg = picture.read_text()
    size = re.search(r"width='(\d+)' height='(\d+)'", svg)
    assert size is not None
    # The matrix starts right of the longest whole label: the first diagonal cell says where.
    first = re.search(
        rf"<rect x='(\d+)' y='{TOP}' width='{CELL}' height='{CELL}' fill='{SAME}'", svg
    )
    assert first is not None
    left = int(first[1])
    # Whole labels (CPU name and kernel never cut), each apart pair's reason in the picture.
    assert ">T6: 1 host a64fx-linux-6.12: Fujitsu A64FX r1p0, Linux 6.12</text>" in svg
    assert "…" not in svg
    assert re.search(r">[a-z]: ID_AA64PFR0_EL1\.RAS, AdvSIMD, FP, ", svg)
    png = tmp_path / "plan.png"
    subprocess.run([str(RSVG), "-o", str(png), str(picture)], check=True)
    image = Image.open(png).convert("RGB")
    assert image.size == (int(size[1]), int(size[2]))

    # Rows and columns go pool by pool: T1 T2 T5 | T3 T4 | T6.
    def cell(row: int, column: int) -> tuple[int, int, int]:
        x = left + column * CELL + 5
        y = TOP + row * CELL + 5
        colour = image.getpixel((x, y))
        assert isinstance(colour, tuple)
        return (colour[0], colour[1], colour[2])

    assert cell(0, 0) == rgb(SAME)
    assert cell(0, 1) == rgb(CHEAP)  # T1 + T2 lose 2 fields
    assert cell(0, 2) == rgb(COSTLY)  # T1 + T5 lose 4: SSBS, PARANGE, DP, RDM
    assert cell(1, 2) == rgb(CHEAP)  # T2 + T5 lose 2: DP, RDM
    assert cell(0, 3) == rgb(APART)  # T1 + T3 cannot share a pool
    assert cell(3, 4) == rgb(CHEAP)  # T3 + T4 lose 1
    assert cell(5, 0) == rgb(APART)
    # Pool 1 (three types) is outlined: its border between T5 and T3 is black, inside not.
    border = image.getpixel((left + 3 * CELL, TOP + CELL))
    assert border == rgb(OUTLINE)
    assert cell(1, 1) != rgb(OUTLINE)
