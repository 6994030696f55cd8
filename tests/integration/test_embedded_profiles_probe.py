"""The shipped QEMU profiles are what the qemu probe writes with this machine's QEMU."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import pytest


def test_shipped_profile_is_what_the_probe_writes_today() -> None:
    """Regenerating (scripts/make-embedded-profiles) would change nothing."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "qemu_errata",
            "probe",
            "--backend",
            "qemu",
            "--qemu-cpu",
            "neoverse-n1",
            "--host",
            "qemu-neoverse-n1",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    shipped = resources.files("qemu_errata").joinpath("data/profiles/qemu-neoverse-n1.json")
    today, then = json.loads(result.stdout), json.loads(shipped.read_text("utf-8"))
    versions = [p["provenance"].pop("qemu").split(".")[:2] for p in (today, then)]
    if versions[0] != versions[1]:
        pytest.skip(f"the shipped profiles are from QEMU {'.'.join(versions[1])}")
    assert today == then  # a rebuild of the same QEMU release changes nothing
