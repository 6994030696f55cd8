"""Every command's exit statuses, as the README's table says them.

0 success or allowed, 1 a negative answer, 2 bad input or usage (one line
naming the input), 125 from `nested` when the nested host itself failed.
Statuses that need a daemon or a kernel are tested beside those (apply on a
running domain: integration/test_vmm_libvirt.py; nested 125:
nested/test_nested_runs.py; the demo: integration/test_demo.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import run_cli

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import baseline
from qemu_errata.files import write_json

N1, A76, A72 = "kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76", "kvm-6.12-cortex-a72"


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("statuses") / "pool.json"
    write_json(path, baseline([load_embedded_profile(N1), load_embedded_profile(A76)]).to_json())
    return path


CASES = [
    (["baseline", N1, A76], 0),
    (["baseline", N1, A72], 1),
    (["baseline", N1, "no-such-profile.json"], 2),
    (["baseline"], 2),
    (["check", "{pool}", A76], 0),
    (["check", "{pool}", A72], 1),
    (["check", "no-such-model.json", A76], 2),
    (["plan", N1, A76, A72], 0),
    (["plan", N1, A76, A72, "--pools", "1"], 1),
    (["plan", N1, "--pools", "0"], 2),
    (["plan", N1, "--host-labels", "yaml"], 2),
    (["show", "{pool}"], 0),
    (["show", "no-such-file.json"], 2),
    (["profiles"], 0),
    (["render", "{pool}", "--vmm", "qemu-tcg", "--qemu-cpu", "neoverse-n1"], 0),
    (["render", "{pool}"], 2),
    (["verify", "{pool}"], 2),
    (["apply", "{pool}", "--domain", "vm"], 2),
    (["probe", "--backend", "sysfs", "--sysfs-root", "/nonexistent"], 2),
    (["probe", "--backend", "qemu"], 2),
    (["nested", "--cpu", "neoverse-n1", "--", "render", "{pool}"], 2),
    (["nested", "--", "baseline", N1], 2),
    (["hook", "frobnicate"], 2),
    (["no-such-command"], 2),
    ([], 2),
]


@pytest.mark.parametrize(
    ("arguments", "status"), CASES, ids=[" ".join(arguments) or "-" for arguments, _ in CASES]
)
def test_exit_status(arguments: list[str], status: int, pool: Path) -> None:
    done = run_cli(*[a.replace("{pool}", str(pool)) for a in arguments])
    assert done.returncode == status, done.stdout + done.stderr
    if status == 2:  # one line naming the problem (argparse puts its usage before it)
        assert done.stderr.splitlines()[-1].startswith("qemu-errata")
        assert "Traceback" not in done.stderr
