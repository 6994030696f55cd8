"""``can-migrate``: the hook's decision from the command line, exit status and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import run_cli
from support.schemas import validate


@pytest.fixture(scope="module")
def model_7_2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("can-migrate") / "pool.json"
    assert run_cli("baseline", "kvm-7.2-neoverse-n1", "-o", path).returncode == 0
    return path


def test_new_to_old_is_refused_with_every_reason(model_7_2: Path) -> None:
    done = run_cli(
        "can-migrate",
        model_7_2,
        "--to",
        "kvm-6.12-neoverse-n1",
        "--from",
        "kvm-7.2-neoverse-n1",
        "--vmm",
        "qemu-7.2",
    )
    assert done.returncode == 1
    assert "KVM_REG_ARM_PSCI_VERSION.Version: the VM carries '1.3' (0x10003)" in done.stdout
    assert done.stdout.splitlines()[-1] == "The VM cannot migrate to neoverse-n1-linux-6.12."


def test_old_to_new_is_allowed_and_json_follows_its_schema(model_7_2: Path) -> None:
    done = run_cli("can-migrate", model_7_2, "--to", "kvm-7.3-neoverse-n1", "--json")
    document = json.loads(done.stdout)
    validate(document, "can-migrate")
    assert done.returncode == 0
    assert document["allowed"] is True


def test_an_unknown_vmm_is_bad_input(model_7_2: Path) -> None:
    done = run_cli("can-migrate", model_7_2, "--to", "kvm-7.3-neoverse-n1", "--vmm", "qemu-0.1")
    assert done.returncode == 2
    assert done.stderr.startswith("qemu-errata: --vmm qemu-0.1: unknown VMM (known: qemu-7.2,")
