"""The nested arm64 KVM host: archive format, file carrying, and real boots under QEMU TCG.

The integration tests boot Debian's arm64 kernel in ``qemu-system-aarch64``
(the image is built once into the cache, see qemu_errata.nested.image) and
run the installed ``qemu-errata`` inside, as a user would.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CORTEX_A57_MIDR,
    CORTEX_A57_REGISTERS,
    NEOVERSE_N1_MIDR,
    NEOVERSE_N1_REGISTERS,
    all_fields_writable,
    profile_json,
)

from qemu_errata.errors import InputError
from qemu_errata.nested.apt import parse_download_line
from qemu_errata.nested.carry import IN_DIRECTORY, OUT_DIRECTORY, plan_transfer
from qemu_errata.nested.cpio import CpioWriter
from qemu_errata.nested.image import KERNELS, NestedImage, load_image, newest_kernel

QEMU_ERRATA = str(Path(sys.executable).with_name("qemu-errata"))
# A boot takes about 4 s here; the bound leaves room for a loaded machine.
BOOT_TIMEOUT = "120"
# Put in the environment of the runs of these tests, which QEMU inherits, so
# that the processes they leave (if any) can be told from other runs'.
RUN_MARK = f"QEMU_ERRATA_TEST_NESTED={uuid.uuid4()}".encode()


def read_newc(data: bytes) -> list[tuple[str, int, bytes]]:
    """(name, mode, data) of each entry of a newc archive, up to the trailer."""
    entries, offset = [], 0
    while True:
        assert data[offset : offset + 6] == b"070701"
        fields = [int(data[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, name_size = fields[1], fields[6], fields[11]
        name_start = offset + 110
        name = data[name_start : name_start + name_size - 1].decode()
        data_start = (name_start + name_size + 3) & ~3
        if name == "TRAILER!!!":
            return entries
        entries.append((name, mode, data[data_start : data_start + size]))
        offset = (data_start + size + 3) & ~3


def test_cpio_archive_holds_files_links_and_devices_and_is_padded() -> None:
    stream = io.BytesIO()
    archive = CpioWriter(stream)
    archive.directory("etc")
    archive.file("etc/hello", b"hello, arm64\n", 0o600)
    archive.symlink("bin/sh", "busybox")
    archive.character_device("dev/console", 5, 1)
    archive.close()
    data = stream.getvalue()

    assert len(data) % 512 == 0
    assert read_newc(data) == [
        ("etc", 0o040755, b""),
        ("etc/hello", 0o100600, b"hello, arm64\n"),
        ("bin/sh", 0o120777, b"busybox"),
        ("dev/console", 0o020600, b""),
    ]


def test_transfer_carries_named_files_in_and_outputs_out(tmp_path: Path) -> None:
    profile = tmp_path / "n1.json"
    profile.write_text("{}")
    sysfs = tmp_path / "sysfs"
    sysfs.mkdir()
    transfer = plan_transfer(
        [
            "probe",
            str(profile),
            "--sysfs-root",
            str(sysfs),
            "-o",
            str(tmp_path / "p.json"),
            "--json",
            "missing.json",
            f"--output={tmp_path / 'q.json'}",
        ]
    )

    assert transfer.argv == [
        "probe",
        f"{IN_DIRECTORY}/0/n1.json",
        "--sysfs-root",
        f"{IN_DIRECTORY}/1/sysfs",
        "-o",
        f"{OUT_DIRECTORY}/0/p.json",
        "--json",
        "missing.json",
        f"--output={OUT_DIRECTORY}/1/q.json",
    ]
    assert transfer.inputs == {
        f"{IN_DIRECTORY}/0/n1.json": profile,
        f"{IN_DIRECTORY}/1/sysfs": sysfs,
    }
    assert transfer.outputs[f"{OUT_DIRECTORY}/0/p.json"] == tmp_path / "p.json"
    message = f"{IN_DIRECTORY}/0/n1.json: cannot read"
    assert transfer.outside_names(message) == f"{profile}: cannot read"


def test_transfer_refuses_an_output_in_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"-o .*/nowhere/p\.json: directory .* does not exist"):
        plan_transfer(["probe", "-o", str(tmp_path / "nowhere" / "p.json")])


def test_subcommand_is_never_taken_for_a_file(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "probe").mkdir()
    assert plan_transfer(["probe", "--json"]).argv == ["probe", "--json"]


def test_apt_download_line_gives_package_and_version_with_epoch() -> None:
    line = (
        "'http://mirror/debian/pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_arm64.deb' "
        "zlib1g_1%3a1.2.13.dfsg-1_arm64.deb 82744 SHA256:" + "ab" * 32
    )
    deb = parse_download_line(line)
    assert (deb.package, deb.version, deb.size) == ("zlib1g", "1:1.2.13.dfsg-1", 82744)


def test_newest_kernel_compares_release_numbers_and_skips_flavours() -> None:
    names = [
        "linux-image-6.12.99+deb12-arm64-unsigned",
        "linux-image-6.12.117+deb12-arm64-unsigned",
        "linux-image-6.12.118+deb12-rt-arm64-unsigned",
        "linux-image-6.12.119+deb12-arm64-16k-unsigned",
        "linux-image-6.1.0-50-arm64-unsigned",
    ]
    assert newest_kernel(KERNELS["6.12"], names) == (
        "linux-image-6.12.117+deb12-arm64-unsigned",
        "6.12.117+deb12-arm64",
    )


def test_cli_imports_with_the_standard_library_only() -> None:
    """The nested host has no lxml, libvirt or qemu.qmp: the CLI must load without them."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('lxml', 'libvirt', 'libvirt_qemu', 'qemu'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from qemu_errata.commands.main import build_parser\n"
        "build_parser()\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", blocker], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


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


@pytest.mark.integration
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


@pytest.mark.integration
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


@pytest.mark.integration
def test_nested_command_exit_status_and_errors_come_back_on_linux_7_2(pool_files: Path) -> None:
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
        "missing-model.json",
        "n1.json",
    )

    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert lines[0] == "qemu-errata: missing-model.json: cannot read: No such file or directory"
    assert lines[-1].startswith("qemu-errata nested: ran on a cortex-a72 host, Linux 7.2.")


@pytest.mark.integration
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


@pytest.mark.integration
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
