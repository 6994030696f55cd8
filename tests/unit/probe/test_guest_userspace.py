"""guest-view's guest userspace (probe/guest_userspace.py) and the busybox pin that feeds it
(nested/guest_userspace.py, data/guest-userspace.toml)."""

from __future__ import annotations

import stat

import pytest
from support.newc import read_newc

from qemu_errata.core import tables
from qemu_errata.core.data_files import parse_toml, read_package_text
from qemu_errata.core.guest_log import read_vulnerabilities, userspace_done
from qemu_errata.errors import CatalogueError
from qemu_errata.nested.guest_userspace import GUEST_USERSPACE_FILE, busybox_pin
from qemu_errata.probe.guest_userspace import (
    INIT_SCRIPT,
    is_arm64_executable,
    userspace_initramfs,
)

BUSYBOX = (
    b"\x7fELF\x02\x01\x01" + bytes(9) + (2).to_bytes(2, "little") + (183).to_bytes(2, "little")
)


def test_the_initramfs_holds_init_busybox_and_the_mount_points() -> None:
    entries = {name: (mode, data) for name, mode, data in read_newc(userspace_initramfs(BUSYBOX))}
    assert entries["init"] == (stat.S_IFREG | 0o755, INIT_SCRIPT.encode())
    assert entries["bin/busybox"] == (stat.S_IFREG | 0o755, BUSYBOX)
    assert entries["bin/sh"] == (stat.S_IFLNK | 0o777, b"busybox")
    assert {"dev", "proc", "sys"} <= {n for n, (m, _) in entries.items() if stat.S_ISDIR(m)}


def test_init_writes_every_vulnerabilities_file_to_the_kernel_log_then_powers_off() -> None:
    assert "cd /sys/devices/system/cpu/vulnerabilities\n" in INIT_SCRIPT
    assert "> /dev/kmsg\n" in INIT_SCRIPT
    assert INIT_SCRIPT.rstrip().endswith("/bin/busybox poweroff -f")


def test_the_lines_init_logs_read_back_as_words_by_file_and_end() -> None:
    console = [
        "[    5.1] qemu-errata: vulnerabilities: spectre_v2: Mitigation: CSV2, BHB",
        "[    5.1] qemu-errata: vulnerabilities: meltdown: Not affected",
        "[    5.2] qemu-errata: vulnerabilities end",
    ]
    assert read_vulnerabilities(console) == {
        "spectre_v2": "Mitigation: CSV2, BHB",
        "meltdown": "Not affected",
    }
    assert [userspace_done(line) for line in console] == [False, False, True]


def test_only_a_64_bit_arm64_elf_is_taken_for_busybox() -> None:
    assert is_arm64_executable(BUSYBOX)
    assert not is_arm64_executable(BUSYBOX[:18] + (62).to_bytes(2, "little"))  # x86-64
    assert not is_arm64_executable(b"#!/bin/sh\n")


def test_the_pin_is_debians_static_busybox_by_version_and_sha256() -> None:
    pin = busybox_pin()
    assert (pin.package, pin.member) == ("busybox-static", "bin/busybox")
    assert len(pin.sha256) == 64
    assert pin.filename.endswith("_arm64.deb")


def test_the_pin_file_is_read_strictly() -> None:
    document = parse_toml(read_package_text("guest-userspace.toml"), "guest-userspace.toml")
    document["busybox"] = {**document["busybox"], "sha512": "x"}
    with pytest.raises(CatalogueError, match="key 'sha512': not a key of this table"):
        tables.check(document, GUEST_USERSPACE_FILE, "guest-userspace.toml")
