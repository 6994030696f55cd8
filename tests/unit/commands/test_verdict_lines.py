"""Every command that compares ends with one verdict line that agrees with its exit status.

(verify and qemu-check: tests/unit/vmm, from their reports; can-migrate: test_can_migrate.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import run_cli

from qemu_errata.probe.validate import ModelValidation, RegisterVerdict
from qemu_errata.reports.kvm_validation import describe_validations

N1, A76, A72 = "kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76", "kvm-6.12-cortex-a72"


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("verdicts") / "pool.json"
    assert run_cli("baseline", N1, A76, "-o", path).returncode == 0
    return path


def test_check_ends_with_its_verdict(pool: Path) -> None:
    joins = run_cli("check", pool, A76)
    assert joins.returncode == 0, joins.stderr
    assert joins.stdout.splitlines()[-1] == "Host cortex-a76-linux-6.12 can present the pool model."
    refused = run_cli("check", pool, A72)
    assert refused.returncode == 1
    lines = refused.stdout.splitlines()
    problems = [line for line in lines[1:] if line.startswith("  ") and "adds" not in line]
    assert lines[0] == "Why host cortex-a72-linux-6.12 cannot present the pool model:"
    assert lines[-1] == (
        "Host cortex-a72-linux-6.12 cannot present the pool model "
        f"({len(problems)} problems above)."
    )


def _validation(model: str, accepted: bool) -> ModelValidation:
    verdict = RegisterVerdict("ID_AA64PFR0_EL1", 0x1, 0x1, accepted, "" if accepted else "EINVAL")
    return ModelValidation(model, "7.2.6", (verdict,))


def test_kvm_validate_ends_with_one_line_for_every_model() -> None:
    good, bad = _validation("a.json", True), _validation("b.json", False)
    assert describe_validations([good]).splitlines()[-1] == "This host's KVM accepts the model."
    assert describe_validations([good, good]).splitlines()[-1] == (
        "This host's KVM accepts all 2 models."
    )
    assert describe_validations([good, bad]).splitlines()[-1] == (
        "This host's KVM refuses 1 of 2 models: b.json."
    )


def test_kvm_validate_counts_one_register_in_the_singular() -> None:
    first = describe_validations([_validation("a.json", True)]).splitlines()[0]
    assert first == "a.json: KVM (Linux 7.2.6) accepts it: 1 of 1 register written"
