"""The test bed's parts that need no daemon: firmware, sysfs tree, guest XML, user locks."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

from lxml import etree
from support.hosts import CORTEX_A57_MIDR, host_profile

from qemu_errata.testbed.bed import (
    BUSY_FIRMWARE,
    IDLE_FIRMWARE,
    QEMU_NAMESPACE,
    guest_xml,
    write_sysfs_tree,
)
from qemu_errata.testbed.users import lock_user

CORTEX_A53_MIDR = 0x410FD034
TEST_NAMESPACE = "urn:example:testbed-test"


def test_idle_firmware_is_a_wait_for_interrupt_loop() -> None:
    wfi, branch_back = 0xD503207F, 0x17FFFFFF  # WFI; B .-4
    assert IDLE_FIRMWARE.read_bytes() == struct.pack("<II", wfi, branch_back)


def test_busy_firmware_fills_4_mib_with_ones_then_counts() -> None:
    words = (
        0xD2A80001,  # movz x1, #0x4000, lsl #16: RAM base
        0xD2A80802,  # movz x2, #0x4040, lsl #16: 4 MiB further
        0x92800003,  # movn x3, #0: all ones
        0xF8008423,  # str x3, [x1], #8
        0xEB02003F,  # cmp x1, x2
        0x54FFFFC3,  # b.lo .-8
        0x91000400,  # add x0, x0, #1
        0x17FFFFFF,  # b .-4
    )
    assert BUSY_FIRMWARE.read_bytes() == struct.pack("<8I", *words)


def test_sysfs_tree_has_the_kernel_files_of_each_cpu(tmp_path: Path) -> None:
    gappy = host_profile("gappy", (int(CORTEX_A57_MIDR, 16), (0, 1)), (CORTEX_A53_MIDR, (4,)))
    write_sysfs_tree(gappy, tmp_path)
    cpus = tmp_path / "devices/system/cpu"
    assert (cpus / "cpu1/regs/identification/midr_el1").read_text() == "0x00000000411fd070\n"
    assert (cpus / "cpu4/regs/identification/midr_el1").read_text() == "0x00000000410fd034\n"
    assert (cpus / "cpu4/regs/identification/revidr_el1").read_text() == "0x0000000000000000\n"
    assert not (cpus / "cpu2").exists()
    assert (cpus / "online").read_text() == "0-1,4\n"


def test_guest_xml_carries_metadata_and_qemu_arguments() -> None:
    element = etree.Element(f"{{{TEST_NAMESPACE}}}mark", nsmap={"t": TEST_NAMESPACE}, id="7")
    domain = guest_xml("vm1", "neoverse-n1", metadata=[element], qemu_args=["-global", "x.y=1"])
    assert domain.get("type") == "qemu"
    assert domain.find("os/type").get("arch") == "aarch64"  # type: ignore[union-attr]
    assert domain.findtext("cpu/model") == "neoverse-n1"
    assert domain.findtext("os/loader") == str(IDLE_FIRMWARE)
    assert domain.find(f"metadata/{{{TEST_NAMESPACE}}}mark").get("id") == "7"  # type: ignore[union-attr]
    arguments = domain.findall(f"{{{QEMU_NAMESPACE}}}commandline/{{{QEMU_NAMESPACE}}}arg")
    assert [a.get("value") for a in arguments] == ["-global", "x.y=1"]


def test_lock_user_is_exclusive() -> None:
    name = f"qe-tb-test-{os.getpid()}"
    first = lock_user(name)
    assert isinstance(first, socket.socket)
    try:
        assert lock_user(name) is None
    finally:
        first.close()
    again = lock_user(name)
    assert again is not None
    again.close()
