"""What operators read, word for word: each command's text output against tests/golden.

The inputs are the embedded kvm-6.12 profiles (real hosts' registers under Linux 6.12 KVM);
``scripts/golden`` rewrites the files after a deliberate change of wording.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import run_cli
from support.golden import assert_golden

N1, A76, A72 = "kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76", "kvm-6.12-cortex-a72"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("golden") / "n1-a76.json"
    assert run_cli("baseline", N1, A76, "-o", path).returncode == 0
    return path


@pytest.mark.parametrize(
    ("name", "arguments", "status"),
    [
        ("baseline-n1-a76.txt", ("baseline", N1, A76), 0),
        ("baseline-n1-a72-refused.txt", ("baseline", N1, A72), 1),
        ("plan-n1-a76-a72.txt", ("plan", N1, A76, A72), 0),
        ("plan-n1-a76-a72-detail.txt", ("plan", N1, A76, A72, "--detail"), 0),
        ("show-profile-n1.txt", ("show", N1), 0),
    ],
)
def test_golden_text_of_profiles(name: str, arguments: tuple[str, ...], status: int) -> None:
    done = run_cli(*arguments)
    assert done.returncode == status, done.stderr
    assert_golden(name, done.stdout)


@pytest.mark.parametrize(
    ("name", "arguments", "status"),
    [
        ("check-model-a72.txt", ("check", "{model}", A72), 1),
        ("show-model-n1-a76.txt", ("show", "{model}"), 0),
        ("errata-model-n1-a76.txt", ("errata", "{model}"), 0),
    ],
)
def test_golden_text_of_a_model(
    model: Path, name: str, arguments: tuple[str, ...], status: int
) -> None:
    done = run_cli(*(argument.format(model=model) for argument in arguments))
    assert done.returncode == status, done.stderr
    assert_golden(name, done.stdout.replace(str(model), "MODEL"))
