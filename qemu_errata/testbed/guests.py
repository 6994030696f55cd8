"""The test bed's guests: small aarch64 TCG domains with a ROM for firmware, and migration."""

from __future__ import annotations

import copy
import shutil
import socket
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import libvirt
from lxml import etree

from qemu_errata.errors import TestBedError
from qemu_errata.testbed.host import Host
from qemu_errata.vmm.domain_xml import ARG_TAG, COMMANDLINE_TAG, QEMU_NAMESPACE
from qemu_errata.vmm.xml_parser import parse_xml

DEFAULT_CPU_MODEL = "cortex-a57"
# An 8-byte ROM: "wfi; b .-4" (0xd503207f, 0x17ffffff), so a guest without
# an OS sleeps instead of spinning TCG through an empty flash.
IDLE_FIRMWARE = Path(__file__).parent.parent / "data" / "testbed-idle.rom"
# A 32-byte ROM that fills the first 4 MiB of RAM with ones, then counts in
# x0 forever: the vCPU keeps a host CPU busy under TCG, and a migration has
# 4 MiB to copy, so a bandwidth limit holds it in its copy phase for a while.
#   movz x1, #0x4000, lsl #16; movz x2, #0x4040, lsl #16; movn x3, #0
#   1: str x3, [x1], #8; cmp x1, x2; b.lo 1b
#   2: add x0, x0, #1; b 2b
BUSY_FIRMWARE = Path(__file__).parent.parent / "data" / "testbed-busy.rom"


def guest_xml(
    name: str,
    cpu_model: str = DEFAULT_CPU_MODEL,
    *,
    metadata: Iterable[etree._Element] = (),
    qemu_args: Sequence[str] = (),
    firmware: Path = IDLE_FIRMWARE,
) -> etree._Element:
    """Domain XML of a small aarch64 TCG guest: virt machine, 128 MiB, no disk, no OS.

    ``metadata`` elements (each in its own namespace) go under ``<metadata>``;
    ``qemu_args`` become ``<qemu:commandline>`` arguments; ``firmware`` is the
    ROM the vCPU runs (IDLE_FIRMWARE sleeps, BUSY_FIRMWARE spins).
    """
    emulator = shutil.which("qemu-system-aarch64")
    if emulator is None:
        raise TestBedError("qemu-system-aarch64 not found: install qemu-system-arm")
    template = resources.files("xml_templates").joinpath("testbed-guest.xml")
    domain = parse_xml(template.read_bytes(), "xml_templates/testbed-guest.xml")
    child(domain, "name").text = name
    child(domain, "cpu/model").text = cpu_model
    child(domain, "os/loader").text = str(firmware)
    child(domain, "devices/emulator").text = emulator
    elements = list(metadata)
    if elements:
        etree.SubElement(domain, "metadata").extend(copy.deepcopy(e) for e in elements)
    if qemu_args:
        commandline = etree.SubElement(domain, COMMANDLINE_TAG, nsmap={"qemu": QEMU_NAMESPACE})
        for argument in qemu_args:
            etree.SubElement(commandline, ARG_TAG, value=argument)
    return domain


def migrate(domain: Any, destination: Host, flags: int = libvirt.VIR_MIGRATE_LIVE) -> Any:
    """Migrate a domain to ``destination`` over a free loopback port; returns the new virDomain."""
    params = {libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://127.0.0.1:{free_port()}"}
    return domain.migrate3(destination.connection, params, flags)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def child(element: etree._Element, path: str) -> etree._Element:
    found = element.find(path)
    if found is None:
        raise TestBedError(f"testbed-guest.xml: no {path} element")
    return found
