"""The nested arm64 KVM host's parts that need no boot: archive format, file carrying, apt lines."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from support.imports import run_without_extras
from support.newc import read_newc

from qemu_errata.cpio import CpioWriter
from qemu_errata.errors import InputError
from qemu_errata.nested.apt import parse_download_line
from qemu_errata.nested.carry import IN_DIRECTORY, OUT_DIRECTORY, plan_transfer
from qemu_errata.nested.image import KERNELS, build_time, newest_kernel


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
    message = f"{IN_DIRECTORY}/0/n1.json: cannot read".encode()
    assert transfer.outside_names(message) == f"{profile}: cannot read".encode()


def test_output_paths_are_printed_as_the_operator_wrote_them(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The command inside prints the inside path of -o; the operator reads the argument they
    typed, not a normalised one ('./p.json' stays './p.json')."""
    monkeypatch.chdir(tmp_path)
    transfer = plan_transfer(["probe", "-o", "./p.json", "--output=.//q.json"])
    written = f"profile of host h written to {OUT_DIRECTORY}/0/p.json.\n"
    assert transfer.outside_names(written.encode()) == b"profile of host h written to ./p.json.\n"
    assert transfer.outside_names(f"{OUT_DIRECTORY}/1/q.json".encode()) == b".//q.json"


def test_output_paths_are_mapped_back_in_output_that_is_not_utf8(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A byte that is not UTF-8 (a guest's console line, a file name in Latin-1) left every
    inside path in the output; the operator's path comes back byte for byte."""
    monkeypatch.chdir(tmp_path)
    name = os.fsdecode(b"caf\xe9.json")  # as Python hands a Latin-1 argv word over
    transfer = plan_transfer(["probe", "-o", name])
    inside = f"{OUT_DIRECTORY}/0/{name}".encode("utf-8", "surrogateescape")
    output = b"console: \xff\nwritten to " + inside + b"\n"
    assert transfer.outside_names(output) == b"console: \xff\nwritten to caf\xe9.json\n"


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


def test_linux_7_3_comes_from_trixie_backports_unsigned_generic_flavour() -> None:
    """Debian ships 7.3 in trixie-backports as linux-binary-unsigned-7.3.N+deb13-arm64."""
    names = [
        "linux-binary-unsigned-7.3.4+deb13-arm64",
        "linux-binary-unsigned-7.3.4+deb13-cloud-arm64",
        "linux-binary-unsigned-7.3.4+deb13-rt-arm64",
        "linux-binary-unsigned-7.3.4+deb13-arm64-16k",
        "linux-image-7.3.4+deb13-arm64",
        "linux-binary-unsigned-7.2.13+deb14-arm64",
    ]
    series = KERNELS["7.3"]
    assert series.suites == ("trixie-backports",)
    assert newest_kernel(series, names) == (
        "linux-binary-unsigned-7.3.4+deb13-arm64",
        "7.3.4+deb13-arm64",
    )


def test_cli_imports_with_the_standard_library_only() -> None:
    """The nested host has no lxml, libvirt or qemu.qmp: the CLI must load without them."""
    completed = run_without_extras(
        "from qemu_errata.commands.main import build_parser\nbuild_parser()\n"
    )
    assert completed.returncode == 0, completed.stderr


def test_the_build_time_said_is_the_longest_this_cache_measured(tmp_path: Path) -> None:
    assert build_time(tmp_path) == "a Linux 7.2 image took 9 s to build on a 2-core machine"
    for series, seconds in (("6.12", 5.7), ("7.3", 11.4)):
        current = tmp_path / "images" / series / "current"
        current.mkdir(parents=True)
        manifest = {"kernel_series": series, "build_seconds": seconds}
        (current / "manifest.json").write_text(json.dumps(manifest))
    assert build_time(tmp_path) == "the Linux 7.3 image took 11 s to build here"
