"""`nested-migrate` refuses bad input with one line (exit 2) before it boots any host."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.cli import run_cli


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "n1.json"
    assert run_cli("baseline", "kvm-6.12-neoverse-n1", "-o", path).returncode == 0
    return path


@pytest.mark.parametrize(
    ("source", "destination", "said"),
    [
        ("neoverse-n1", "neoverse-n1:7.2", "--from neoverse-n1: expected CPU:KERNEL"),
        ("neoverse-n1:6.12", "neoverse-n1:6.13", "--to neoverse-n1:6.13: unknown kernel series"),
        ("neoverse-n1:6.12", "no-such-cpu:7.2", "--to no-such-cpu:7.2: QEMU has no CPU model"),
    ],
)
def test_bad_hosts_are_refused_before_booting(
    model: Path, source: str, destination: str, said: str
) -> None:
    started = time.monotonic()
    done = run_cli("nested-migrate", model, "--from", source, "--to", destination)
    assert time.monotonic() - started < 10  # no boot (two hosts take 25 s or more)
    assert done.returncode == 2
    assert done.stderr.startswith(f"qemu-errata: {said}")
    assert done.stderr.count("\n") == 1


def test_a_missing_model_is_refused(tmp_path: Path) -> None:
    done = run_cli(
        "nested-migrate", tmp_path / "none.json", "--from", "neoverse-n1:6.12", "--to", "a64fx:7.2"
    )
    assert done.returncode == 2
    assert str(tmp_path / "none.json") in done.stderr
