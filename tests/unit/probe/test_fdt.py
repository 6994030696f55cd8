"""The device tree writer, read back by an independent decoder (the ``fdt`` package)."""

from __future__ import annotations

import fdt as decoder
import pytest

from qemu_errata.probe import fdt
from qemu_errata.probe.guest_boot import (
    COMMAND_LINE,
    GIC_REDISTRIBUTOR_SIZE,
    RAM_BASE,
    RAM_SIZE,
    device_tree,
)
from qemu_errata.probe.kvm_run import GIC_DISTRIBUTOR, GIC_REDISTRIBUTOR


def test_a_tree_reads_back_node_for_node_and_value_for_value() -> None:
    tree = fdt.Node(
        "",
        {"#address-cells": fdt.cells(2), "model": fdt.string("odd-length")},
        [
            fdt.Node("a@1", {"reg": fdt.address_cells(0x1_0000_0000, 5), "empty": b""}),
            fdt.Node("b", {"names": fdt.strings(["x", "yz"]), "model": fdt.string("b")}),
        ],
    )
    read = decoder.parse_dtb(fdt.write_dtb(tree))
    assert read.header.version == fdt.VERSION
    assert read.get_property("#address-cells").value == 2
    assert read.get_property("model").value == "odd-length"
    assert read.get_property("reg", "/a@1").data == [1, 0, 0, 5]
    assert isinstance(read.get_property("empty", "/a@1"), decoder.Property)
    assert read.get_property("names", "/b").data == ["x", "yz"]
    assert read.get_property("model", "/b").value == "b"


def test_each_property_name_is_stored_once() -> None:
    tree = fdt.Node("", {"model": b"\0"}, [fdt.Node("n", {"model": b"\0"})])
    assert fdt.write_dtb(tree).count(b"model\0") == 1


def test_the_root_node_has_no_name() -> None:
    with pytest.raises(ValueError, match="root"):
        fdt.write_dtb(fdt.Node("root"))


def test_the_guest_view_tree_describes_the_vm_the_kernel_boots_on() -> None:
    read = decoder.parse_dtb(fdt.write_dtb(device_tree(COMMAND_LINE)))
    assert read.get_property("bootargs", "/chosen").value == COMMAND_LINE
    assert read.get_property("reg", f"/memory@{RAM_BASE:x}").data == [0, RAM_BASE, 0, RAM_SIZE]
    gic = f"/intc@{GIC_DISTRIBUTOR:x}"
    assert read.get_property("compatible", gic).value == "arm,gic-v3"
    assert read.get_property("reg", gic).data == [
        0,
        GIC_DISTRIBUTOR,
        0,
        0x10000,
        0,
        GIC_REDISTRIBUTOR,
        0,
        GIC_REDISTRIBUTOR_SIZE,
    ]
    assert read.get_property("phandle", gic).value == read.get_property("interrupt-parent").value
    assert read.get_property("method", "/psci").value == "hvc"
    assert read.get_property("enable-method", "/cpus/cpu@0").value == "psci"
    # Every timer interrupt a level-high PPI.
    interrupts = read.get_property("interrupts", "/timer").data
    assert interrupts[0::3] == [1, 1, 1, 1]
    assert interrupts[2::3] == [4, 4, 4, 4]


def test_chosen_holds_the_seeds_and_the_initrd_as_qemus_virt_board_writes_them() -> None:
    """hw/arm/virt.c create_randomness(): an 8-byte kaslr-seed and a 32-byte rng-seed, fresh
    at each boot; linux,initrd-start/-end as #address-cells (2) wide numbers."""
    first = decoder.parse_dtb(fdt.write_dtb(device_tree(COMMAND_LINE, (0x4F000000, 0x4F123456))))
    second = decoder.parse_dtb(fdt.write_dtb(device_tree(COMMAND_LINE)))
    seeds = [
        (tree.get_property("kaslr-seed", "/chosen"), tree.get_property("rng-seed", "/chosen"))
        for tree in (first, second)
    ]
    assert [(len(k.data) * 4, len(r.data) * 4) for k, r in seeds] == [(8, 32), (8, 32)]
    assert seeds[0][0].data != seeds[1][0].data
    assert first.get_property("linux,initrd-start", "/chosen").data == [0, 0x4F000000]
    assert first.get_property("linux,initrd-end", "/chosen").data == [0, 0x4F123456]
    assert second.get_property("linux,initrd-start", "/chosen") is None
