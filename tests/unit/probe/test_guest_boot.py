"""guest-view's VM against a stand-in KVM whose guest is a script of exits.

The script stands for a booting kernel: the boot program's MMIO stores of
each register, the two list calls, the earlycon's transmit writes. What is
checked is what a VMM must do with them: the VM made as the facts file says
(capability, filter, BMAP_2, read-only UART page), the list answered in
x0-x3, the console collected up to the end of the detection, and a guest
that stops first or runs out of time failing with its console.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import struct
import time
from collections.abc import Mapping
from typing import Any

import pytest
from support.fake_kvm import CATALOGUE, FakeKvm

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import REGISTER_GROUPS, PoolModel, baseline
from qemu_errata.errors import InputError
from qemu_errata.probe import kvm_abi as abi
from qemu_errata.probe.guest_boot import (
    DISCOVER_IMPL_CPUS,
    DISCOVER_IMPL_VER,
    UART_BASE,
    UART_LINE_STATUS,
    GuestBootError,
    boot_guest,
    guest_registers,
)
from qemu_errata.probe.kernel_image import KernelImage
from qemu_errata.probe.mmio_program import DONE, FIRST_REGISTER, MMIO_BASE

POOL = baseline(
    [load_embedded_profile("kvm-7.2-neoverse-n1"), load_embedded_profile("kvm-7.2-cortex-a76")]
)
IMAGE = KernelImage(b"\0" * 0x1000, 0, 0x10000, compressed=False)
LOG = b"[    0.0] smccc: KVM: Number of target implementation CPUs is 2\n"
DONE_LINE = b"[    0.4] alternatives: applying system-wide alternatives\n"
Exit = tuple[str, Any]
RING = mmap.PAGESIZE  # the coalesced MMIO ring: page 1 of the vCPU mapping


class ScriptedKvm(FakeKvm):
    """FakeKvm whose KVM_RUN plays a script of exits; it records what the VMM set."""

    def __init__(self, model: PoolModel, script: list[Exit]) -> None:
        super().__init__()
        for group in REGISTER_GROUPS[:2]:
            for name, value in getattr(model, group).items():
                self.registers[CATALOGUE[name].one_reg_id] = value
        self.capabilities[abi.KVM_CAP_READONLY_MEM] = 1
        self.x = [0] * 4
        self.script = list(script)
        self.loaded: list[bytes] = []  # the data the VMM gave each MMIO load
        self.zones: list[tuple[int, int]] = []
        self.slots: dict[int, tuple[int, int, int, bytes]] = {}  # slot -> guest, size, flags, page
        self.vm_attributes: list[tuple[int, int, bytes]] = []
        self.enabled: list[int] = []
        self.pc = 0
        self._run: mmap.mmap | None = None

    def map(self, fd: int, size: int) -> mmap.mmap:
        mapping = mmap.mmap(-1, size)
        if fd >= 0:
            self._run = mapping
        return mapping

    def _handlers(self) -> Mapping[tuple[str, int], Any]:
        return {
            **super()._handlers(),
            ("system", abi.KVM_GET_VCPU_MMAP_SIZE): lambda _: 3 * 4096,
            ("vm", abi.KVM_SET_USER_MEMORY_REGION): self._set_memory,
            ("vm", abi.KVM_ENABLE_CAP): self._enable_cap,
            ("vm", abi.KVM_SET_DEVICE_ATTR): self._vm_attribute,
            ("vm", abi.KVM_REGISTER_COALESCED_MMIO): self._coalesce,
            ("vcpu", abi.KVM_SET_ONE_REG): self._set_one_reg,
            ("vcpu", abi.KVM_SET_DEVICE_ATTR): lambda _: 0,
            ("vcpu", abi.KVM_ARM_VCPU_FINALIZE): lambda _: 0,
            ("vcpu", abi.KVM_RUN): self._kvm_run,
            ("device", abi.KVM_SET_DEVICE_ATTR): self._device_attribute,
        }

    def _device_attribute(self, argument: bytearray) -> int:
        _, group, attribute, address = abi.DEVICE_ATTR.unpack(argument)
        if group == abi.KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS:
            self.gic_registers[attribute] = ctypes.c_uint64.from_address(address).value
            return 0
        return 0 if group == abi.KVM_DEV_ARM_VGIC_GRP_ADDR else self._set_device_attr(argument)

    def _coalesce(self, argument: bytearray) -> int:
        address, size, _ = abi.COALESCED_MMIO_ZONE.unpack(argument)
        self.zones.append((address, size))
        return 0

    def _set_memory(self, argument: bytearray) -> int:
        slot, flags, guest, size, address = abi.USER_MEMORY_REGION.unpack(argument)
        self.slots[slot] = (guest, size, flags, ctypes.string_at(address, min(size, 0x20)))
        return 0

    def _enable_cap(self, argument: bytearray) -> int:
        self.enabled.append(abi.ENABLE_CAP.unpack(argument)[0])
        return 0

    def _vm_attribute(self, argument: bytearray) -> int:
        _, group, attribute, address = abi.DEVICE_ATTR.unpack(argument)
        data = ctypes.string_at(address, abi.SMCCC_FILTER.size)
        self.vm_attributes.append((group, attribute, data))
        return 0

    def _set_one_reg(self, argument: bytearray) -> int:
        register_id, address = abi.ONE_REG.unpack(argument)
        value = ctypes.c_uint64.from_address(address).value
        if register_id == abi.KVM_REG_ARM_CORE_PC:
            self.pc = value
        elif register_id in [abi.core_x_register(n) for n in range(4)]:
            self.x[[abi.core_x_register(n) for n in range(4)].index(register_id)] = value
        elif register_id in self.registers:
            self.registers[register_id] = value
        else:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        return 0

    def _get_one_reg(self, argument: bytearray) -> int:
        register_id, address = abi.ONE_REG.unpack(argument)
        if register_id == abi.core_x_register(1):
            ctypes.c_uint64.from_address(address).value = self.x[1]
            return 0
        return super()._get_one_reg(argument)

    def _kvm_run(self, _: int) -> int:
        assert self._run is not None
        if self._run[52] == 0 and self._run[8] == abi.KVM_EXIT_MMIO:  # is_write 0: a load
            self.loaded.append(bytes(self._run[40:44]))
        while self.script and self.script[0][0] == "ring":  # writes KVM keeps, no exit
            self._keep(self.script.pop(0)[1])
        if not self.script:  # a guest that runs on, until the deadline's signal
            time.sleep(60)
        kind, detail = self.script.pop(0)
        if kind == "store":
            address, value = detail
            self._exit(abi.KVM_EXIT_MMIO, struct.pack("=Q8sIB", address, value, 8, 1))
        elif kind == "console":
            self._exit(abi.KVM_EXIT_MMIO, struct.pack("=Q8sIB", UART_BASE, bytes([detail]), 4, 1))
        elif kind == "load":
            self._exit(abi.KVM_EXIT_MMIO, struct.pack("=Q8sIB", UART_BASE + detail, bytes(8), 4, 0))
        elif kind == "hypercall":
            function, x1 = detail
            self.x[1] = x1
            self._exit(abi.KVM_EXIT_HYPERCALL, struct.pack("=Q", function))
        else:
            self._exit(abi.KVM_EXIT_SYSTEM_EVENT, struct.pack("=I", detail))
        return 0

    def _keep(self, console: bytes) -> None:
        """Put transmit writes in the coalesced MMIO ring at page 1, as KVM does."""
        assert self._run is not None
        capacity = abi.coalesced_capacity(mmap.PAGESIZE)
        first, last = abi.COALESCED_RING_HEADER.unpack_from(self._run, RING)
        for byte in console:
            entry = RING + abi.COALESCED_RING_HEADER.size + last * abi.COALESCED_ENTRY.size
            abi.COALESCED_ENTRY.pack_into(self._run, entry, UART_BASE, 4, 0, bytes([byte]))
            last = (last + 1) % capacity
            assert last != first, "the ring is full: KVM would exit"
        abi.COALESCED_RING_HEADER.pack_into(self._run, RING, first, last)

    def _exit(self, reason: int, details: bytes) -> None:
        assert self._run is not None
        self._run[8:12] = reason.to_bytes(4, "little")
        self._run[32 : 32 + len(details)] = details


def guest_script(model: PoolModel, console: bytes) -> list[Exit]:
    """A guest that reads every register (the value MIDR + index), asks for the list, logs."""
    stores: list[Exit] = [
        ("store", (MMIO_BASE + FIRST_REGISTER + 8 * i, (0x1000 + i).to_bytes(8, "little")))
        for i, _ in enumerate(guest_registers(model, CATALOGUE))
    ]
    stores.append(("store", (MMIO_BASE + DONE, bytes(8))))
    calls: list[Exit] = [("hypercall", (DISCOVER_IMPL_VER, 0))]
    calls += [("hypercall", (DISCOVER_IMPL_CPUS, i)) for i in range(3)]
    return stores + calls + [("console", byte) for byte in console]


def answers_after(kernel: ScriptedKvm, model: PoolModel, calls: int) -> list[int]:
    """x0-x3 as the VMM left them after the guest's first ``calls`` list calls."""
    script = guest_script(model, b"")
    count = len(script) - 4 + calls
    fresh = ScriptedKvm(model, script[:count])
    with pytest.raises(GuestBootError, match="within"):
        boot_guest(model, IMAGE, CATALOGUE, seconds=0.2, calls=fresh)
    return fresh.x


def test_the_guest_is_given_the_model_the_list_and_a_console_and_read() -> None:
    kernel = ScriptedKvm(POOL, guest_script(POOL, LOG + DONE_LINE + b"never read\n"))
    boot = boot_guest(POOL, IMAGE, CATALOGUE, seconds=5, calls=kernel)
    names = [register.name for register in guest_registers(POOL, CATALOGUE)]
    assert {n: read.value for n, read in boot.reads.items()} == {
        n: 0x1000 + i for i, n in enumerate(names)
    }
    assert boot.console == bytearray(LOG + DONE_LINE)
    assert boot.list_offered
    assert boot.version_calls == 1
    assert [a.index for a in boot.answers] == [0, 1, 2]
    assert [a.entry for a in boot.answers[:2]] == list(POOL.target_implementations)
    assert boot.answers[2].entry is None
    # The filter forwards the two calls to userspace; BMAP_2 advertises them.
    assert kernel.vm_attributes == [
        (
            abi.KVM_ARM_VM_SMCCC_CTRL,
            abi.KVM_ARM_VM_SMCCC_FILTER,
            bytes(abi.smccc_filter(0xC6000040, 2, 2)),
        )
    ]
    assert kernel.registers[CATALOGUE["KVM_REG_ARM_VENDOR_HYP_BMAP_2"].one_reg_id] == 0b11
    # The UART's page is read-only memory whose line status says the transmitter is empty.
    guest, size, flags, page = kernel.slots[1]
    assert (guest, size, flags) == (UART_BASE, 0x1000, abi.KVM_MEM_READONLY)
    assert page[UART_LINE_STATUS] == 0x60
    assert kernel.enabled == []  # the model pins no MIDR: the capability stays off


def test_the_list_calls_are_answered_in_x0_to_x3() -> None:
    kernel = ScriptedKvm(POOL, [])
    first = POOL.target_implementations[0]
    assert answers_after(kernel, POOL, 1) == [0, 0x10000, 2, 0]
    assert answers_after(kernel, POOL, 2) == [0, first.midr, first.revidr or 0, first.aidr or 0]
    assert answers_after(kernel, POOL, 4) == [(1 << 64) - 3, 0, 0, 0]


def test_without_read_only_memory_the_line_status_is_answered_from_the_exit() -> None:
    loads: list[Exit] = [("load", UART_LINE_STATUS), ("load", 0x18)]
    console: list[Exit] = [("console", byte) for byte in DONE_LINE]
    kernel = ScriptedKvm(POOL, [*guest_script(POOL, b""), *loads, *console])
    del kernel.capabilities[abi.KVM_CAP_READONLY_MEM]
    boot_guest(POOL, IMAGE, CATALOGUE, seconds=5, calls=kernel)
    assert 1 not in kernel.slots
    assert kernel.loaded == [bytes([0x60, 0, 0, 0]), bytes(4)]


def test_console_bytes_kvm_kept_in_its_ring_are_taken_at_the_next_exit_up_to_the_end() -> None:
    script = [*guest_script(POOL, b""), ("ring", LOG + DONE_LINE + b"later\n"), ("console", 0x78)]
    kernel = ScriptedKvm(POOL, script)
    kernel.capabilities[abi.KVM_CAP_COALESCED_MMIO] = 1
    boot = boot_guest(POOL, IMAGE, CATALOGUE, seconds=5, calls=kernel)
    assert kernel.zones == [(UART_BASE, 4)]  # the transmit register only
    assert boot.console == bytearray(LOG + DONE_LINE)


def test_the_ring_is_read_from_first_to_last_around_its_end_and_marked_taken() -> None:
    run = mmap.mmap(-1, 2 * mmap.PAGESIZE)
    capacity = abi.coalesced_capacity(mmap.PAGESIZE)
    for index, byte in ((capacity - 1, b"a"), (0, b"b")):
        entry = RING + abi.COALESCED_RING_HEADER.size + index * abi.COALESCED_ENTRY.size
        abi.COALESCED_ENTRY.pack_into(run, entry, UART_BASE, 1, 0, byte)
    abi.COALESCED_RING_HEADER.pack_into(run, RING, capacity - 1, 1)
    assert abi.take_coalesced(run, RING, capacity) == [(UART_BASE, b"a"), (UART_BASE, b"b")]
    assert abi.COALESCED_RING_HEADER.unpack_from(run, RING) == (1, 1)
    assert capacity == (mmap.PAGESIZE - 8) // 24


def test_a_model_pinning_the_midr_turns_on_the_capability_before_the_vcpu() -> None:
    pinned = PoolModel(
        id_registers={**POOL.id_registers, "MIDR_EL1": 0x413FD0B0},
        target_implementations=TargetImplementations(
            [*POOL.target_implementations, TargetImplementation(0x413FD0B0, 0, 0)]
        ),
    )
    kernel = ScriptedKvm(pinned, guest_script(pinned, DONE_LINE))
    boot = boot_guest(pinned, IMAGE, CATALOGUE, seconds=5, calls=kernel)
    assert kernel.enabled == [abi.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS]
    assert boot.identity_pinned
    assert kernel.registers[CATALOGUE["MIDR_EL1"].one_reg_id] == 0x413FD0B0


def test_a_guest_that_stops_before_the_detection_is_done_fails_with_its_console() -> None:
    kernel = ScriptedKvm(POOL, [*guest_script(POOL, LOG), ("event", 2)])
    with pytest.raises(GuestBootError, match="stopped \\(SYSTEM_RESET\\) before") as failed:
        boot_guest(POOL, IMAGE, CATALOGUE, seconds=5, calls=kernel)
    assert failed.value.console == LOG.decode()


def test_a_guest_out_of_time_fails_with_its_console() -> None:
    kernel = ScriptedKvm(POOL, guest_script(POOL, LOG))
    with pytest.raises(GuestBootError, match=r"within 0\.5 s") as failed:
        boot_guest(POOL, IMAGE, CATALOGUE, seconds=0.5, calls=kernel)
    assert failed.value.console == LOG.decode()


def test_a_model_the_kernel_refuses_is_bad_input() -> None:
    kernel = ScriptedKvm(POOL, [])
    kernel.failures[abi.KVM_SET_ONE_REG] = errno.EINVAL
    with pytest.raises(InputError, match="this host's KVM refuses the model: "):
        boot_guest(POOL, IMAGE, CATALOGUE, seconds=5, calls=kernel)
