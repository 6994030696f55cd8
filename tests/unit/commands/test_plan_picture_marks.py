"""``plan --picture``'s marks, read from the SVG: whole labels, a legend entry for every
mark, every reason a pair cannot share written under the matrix (pixels: integration)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from support.cli import run_cli

from qemu_errata.reports.plan_picture import CELL, LEGEND, OUTLINE

SVG = "{http://www.w3.org/2000/svg}"
PROFILES = (
    "kvm-6.12-neoverse-n1",
    "kvm-6.12-cortex-a76",
    "kvm-6.12-cortex-a72",
    "kvm-6.12-cortex-a57",
    "kvm-7.2-neoverse-n1",
    "kvm-6.12-a64fx",
)


def test_every_mark_has_a_legend_entry_and_every_letter_a_reason(tmp_path: Path) -> None:
    picture = tmp_path / "plan.svg"
    done = run_cli("plan", *PROFILES, "--vmm", "qemu-7.2", "--picture", picture)
    assert done.returncode == 0, done.stderr
    root = ET.parse(picture).getroot()
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    cells = [
        r
        for r in root.iter(f"{SVG}rect")
        if r.get("width") == str(CELL) and r.get("fill") != "none"  # not a pool's outline
    ]
    assert len(cells) == len(PROFILES) ** 2
    legend = {colour for colour, _ in LEGEND}
    assert {cell.get("fill") for cell in cells} <= legend
    legend_boxes = {r.get("fill") for r in root.iter(f"{SVG}rect") if r.get("width") == "18"}
    assert legend <= legend_boxes
    assert any(
        r.get("stroke") == OUTLINE for r in root.iter(f"{SVG}rect") if r.get("width") == "18"
    )
    # Every row label is whole: the type's id, its hosts, its CPU and its kernel.
    assert "T5: 1 host neoverse-n1-linux-7.2: Arm Neoverse-N1 r4p1, Linux 7.2" in texts
    # Cells of pairs that cannot share hold letters; each letter's reason is written below.
    letters = {mark for t in texts if re.fullmatch(r"[a-zA-Z]{1,2}\+?", t) for mark in t[:2]}
    assert letters - {"+"}
    reasons = {t.split(": ", 1)[0] for t in texts if re.match(r"[a-zA-Z]: ", t)}
    assert letters - {"+"} == reasons
    psci = next(t for t in texts if "KVM_REG_ARM_PSCI_VERSION.Version differs" in t)
    assert psci.endswith("is not set by qemu-7.2, and one host's KVM refuses another's value")
