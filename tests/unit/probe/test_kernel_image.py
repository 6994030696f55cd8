"""Telling an arm64 kernel Image, raw or gzip-compressed, from anything else."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from support.cli import run_cli

from qemu_errata.errors import InputError
from qemu_errata.probe.kernel_image import HEADER, parse_image, read_image


def image(
    text_offset: int = 0x80000, image_size: int = 0x20000, magic: bytes = b"ARM\x64"
) -> bytes:
    header = struct.pack(
        "<IIQQQQQQ4sI", 0x91005A4D, 0x14000000, text_offset, image_size, 0xA, 0, 0, 0, magic, 0
    )
    return header + bytes(0x1000 - len(header))


def test_the_header_says_where_the_kernel_goes() -> None:
    parsed = parse_image(image(), "Image")
    assert (parsed.text_offset, parsed.image_size, parsed.compressed) == (0x80000, 0x20000, False)
    assert len(parsed.data) == 0x1000


def test_a_gzip_compressed_image_is_decompressed() -> None:
    raw = image()
    parsed = parse_image(gzip.compress(raw), "vmlinuz")
    assert parsed.compressed
    assert parsed.data == raw


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (image(magic=b"ARM\0"), "no ARM\\x64 magic at byte 56"),
        (gzip.compress(image(magic=b"\x7fELF")), "of the gzip-decompressed data"),
        (b"MZ" + bytes(100), "no ARM\\x64 magic"),
        (b"\x1f\x8b" + b"not really gzip", "gzip data that does not decompress"),
        (image()[: HEADER.size - 1], "no header"),
        (image(image_size=0), "less than the"),
    ],
)
def test_anything_else_is_refused_naming_the_file(data: bytes, says: str) -> None:
    with pytest.raises(InputError, match=r"^kernel\.bin: ") as refused:
        parse_image(data, "kernel.bin")
    assert says in str(refused.value)


def test_guest_view_refuses_a_kernel_that_is_not_an_image_with_one_line(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    assert run_cli("baseline", "kvm-7.2-neoverse-n1", "-o", model).returncode == 0
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(gzip.compress(b"#!/bin/sh\n" * 100))
    completed = run_cli("guest-view", model, "--kernel", kernel)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert f"{kernel}: not an arm64 kernel Image" in completed.stderr


# An ELF header's first 20 bytes: ELF64, little-endian, version 1, executable, EM_AARCH64 (183).
ARM64_ELF_HEADER = (
    b"\x7fELF\x02\x01\x01" + bytes(9) + (2).to_bytes(2, "little") + (183).to_bytes(2, "little")
)


def test_an_unreadable_kernel_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing: cannot read: No such file"):
        read_image(tmp_path / "missing")


def test_guest_view_on_a_host_without_arm64_kvm_is_one_line_of_bad_input(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    assert run_cli("baseline", "kvm-7.2-neoverse-n1", "-o", model).returncode == 0
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(gzip.compress(image()))
    busybox = tmp_path / "busybox"
    busybox.write_bytes(ARM64_ELF_HEADER)
    completed = run_cli("guest-view", model, "--kernel", kernel, "--busybox", busybox)
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert "/dev/kvm: " in completed.stderr


def test_guest_view_refuses_a_busybox_that_is_not_arm64(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    assert run_cli("baseline", "kvm-7.2-neoverse-n1", "-o", model).returncode == 0
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(gzip.compress(image()))
    busybox = tmp_path / "busybox"
    busybox.write_bytes(ARM64_ELF_HEADER[:18] + (0x3E).to_bytes(2, "little"))  # EM_X86_64
    completed = run_cli("guest-view", model, "--kernel", kernel, "--busybox", busybox)
    assert (completed.returncode, completed.stderr.count("\n")) == (2, 1)
    assert f"{busybox}: not an arm64 executable" in completed.stderr
