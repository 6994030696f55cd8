"""The nested arm64 KVM host: real boots under QEMU TCG.

These tests boot Debian's arm64 kernel in ``qemu-system-aarch64``
(the image is built once into the cache, see qemu_errata.nested.image) and
run the installed ``qemu-errata`` inside, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from support.cli import QEMU_ERRATA
from support.hosts import (
    CORTEX_A57_MIDR,
    CORTEX_A57_REGISTERS,
    NEOVERSE_N1_MIDR,
    NEOVERSE_N1_REGISTERS,
    all_fields_writable,
    profile_json,
)

from qemu_errata.nested.image import KERNELS, NestedImage, load_image

# A boot takes about 4 s here; the bound leaves room for a loaded machine.
BOOT_TIMEOUT = "120"
# Put in the environment of the runs of these tests, which QEMU inherits, so
# that the processes they leave (if any) can be told from other runs'.
RUN_MARK = f"QEMU_ERRATA_TEST_NESTED={uuid.uuid4()}".encode()


def run_nested(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    variable, value = RUN_MARK.decode().split("=")
    return subprocess.run(
        [QEMU_ERRATA, "nested", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        env={**os.environ, variable: value},
    )


def nested_qemu_processes() -> list[str]:
    """Command lines of the processes still running from the nested runs of these tests."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if RUN_MARK not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


@pytest.fixture(scope="session")
def nested_image() -> NestedImage:
    """The 6.12 image, built into the cache the first time (a minute at most)."""
    return load_image(KERNELS["6.12"])


@pytest.fixture(scope="module")
def pool_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("nested-pool")
    n1 = profile_json(
        "n1", NEOVERSE_N1_MIDR, NEOVERSE_N1_REGISTERS, all_fields_writable(NEOVERSE_N1_REGISTERS)
    )
    a57 = profile_json(
        "a57", CORTEX_A57_MIDR, CORTEX_A57_REGISTERS, all_fields_writable(CORTEX_A57_REGISTERS)
    )
    (directory / "n1.json").write_text(json.dumps(n1))
    (directory / "a57.json").write_text(json.dumps(a57))
    return directory


@pytest.fixture(scope="module")
def nested_baseline(
    nested_image: NestedImage, pool_files: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``baseline`` run inside a neoverse-n1 host: one boot shared by the tests below."""
    started = time.monotonic()
    completed = run_nested(
        pool_files,
        "--cpu",
        "neoverse-n1",
        "--timeout",
        BOOT_TIMEOUT,
        "--",
        "baseline",
        "n1.json",
        "a57.json",
        "-o",
        "nested-model.json",
    )
    return completed, time.monotonic() - started


def test_nested_baseline_gives_what_a_local_run_gives(
    nested_baseline: tuple[subprocess.CompletedProcess[str], float], pool_files: Path
) -> None:
    nested, _ = nested_baseline
    local = subprocess.run(
        [QEMU_ERRATA, "baseline", "n1.json", "a57.json", "-o", "local-model.json"],
        cwd=pool_files,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert nested.returncode == 0, nested.stderr
    assert nested.stdout == local.stdout.replace("local-model.json", "nested-model.json")
    nested_model = json.loads((pool_files / "nested-model.json").read_text())
    assert nested_model == json.loads((pool_files / "local-model.json").read_text())


def test_nested_run_names_cpu_kernel_and_package_versions(
    nested_baseline: tuple[subprocess.CompletedProcess[str], float], nested_image: NestedImage
) -> None:
    nested, seconds = nested_baseline
    report = nested.stderr.strip().splitlines()[-1]

    assert report.startswith("qemu-errata nested: ran on a neoverse-n1 host, Linux 6.12.")
    assert nested_image.kernel_release in report
    for package, version in nested_image.manifest["packages"].items():
        assert f"{package} {version}" in report
    assert seconds < 60
    assert nested_qemu_processes() == []


def test_linux_7_3_host_boots_debian_trixie_backports_kernel(tmp_path: Path) -> None:
    """Debian's 7.3 kernel (trixie-backports) runs KVM: probe reads its vCPU registers."""
    completed = run_nested(
        tmp_path,
        "--cpu",
        "neoverse-n1",
        "--kernel",
        "7.3",
        "--timeout",
        BOOT_TIMEOUT,
        "--",
        "probe",
    )

    assert completed.returncode == 0, completed.stderr
    profile = json.loads(completed.stdout)
    assert profile["host"] == "neoverse-n1-linux-7.3"
    assert profile["implementations"][0]["midr"] == NEOVERSE_N1_MIDR
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("qemu-errata nested: ran on a neoverse-n1 host, Linux 7.3.")
    assert "linux-binary-unsigned-7.3." in last
    assert nested_qemu_processes() == []


def test_nested_command_exit_status_and_errors_come_back_on_linux_7_2(pool_files: Path) -> None:
    (pool_files / "broken-model.json").write_text("{not json")
    completed = run_nested(
        pool_files,
        "--cpu",
        "cortex-a72",
        "--kernel",
        "7.2",
        "--timeout",
        BOOT_TIMEOUT,
        "--",
        "check",
        "broken-model.json",
        "n1.json",
    )

    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert lines[0] == (
        "qemu-errata: broken-model.json: not valid JSON: Expecting property name enclosed in "
        "double quotes at line 1 column 2"
    )
    assert lines[-1].startswith("qemu-errata nested: ran on a cortex-a72 host, Linux 7.2.")


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        ("cortex-z99", "qemu-system-aarch64 has no such CPU model"),
        ("cortex-a15", "not an AArch64 CPU model: it cannot run arm64 Linux"),
    ],
)
def test_cpu_model_that_cannot_boot_is_refused_at_once(
    nested_image: NestedImage, pool_files: Path, model: str, problem: str
) -> None:
    started = time.monotonic()
    completed = run_nested(pool_files, "--cpu", model, "--", "check", "n1.json", "n1.json")

    assert completed.returncode == 2
    assert completed.stderr == f"qemu-errata: --cpu {model}: {problem}\n"
    assert time.monotonic() - started < 10
    assert nested_qemu_processes() == []


def test_boot_without_result_in_time_stops_qemu(
    nested_image: NestedImage, pool_files: Path
) -> None:
    started = time.monotonic()
    completed = run_nested(
        pool_files, "--cpu", "neoverse-n1", "--timeout", "1", "--", "check", "n1.json", "n1.json"
    )

    assert completed.returncode == 125
    assert completed.stderr.startswith(
        "qemu-errata nested: the nested host gave no result within 1 s"
    )
    assert time.monotonic() - started < 10
    assert nested_qemu_processes() == []
