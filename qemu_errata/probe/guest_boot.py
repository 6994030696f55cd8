"""Boot a real Linux kernel on a vCPU presenting a pool model, and collect what it says.

``qemu-errata guest-view`` makes the VM a VMM would make for a pool guest,
through /dev/kvm, with the standard library only (it runs on the nested host):

- one vCPU with the kvm probe's features, the in-kernel vGICv3, arch timer
  and PSCI; MIDR/REVIDR/AIDR writable first (KVM_CAP_ARM_WRITABLE_IMP_ID_REGS)
  when the model pins them and the kernel has the capability;
- every register of the model written before the first run, as kvm-validate
  writes it (a refusal is an InputError naming the register and the reason);
- the target implementation list: where the kernel has
  KVM_REG_ARM_VENDOR_HYP_BMAP_2 (Linux >= 6.15), the SMCCC filter forwards
  DISCOVER_IMPL_VER and DISCOVER_IMPL_CPUS to us and BMAP_2 bits 0 and 1
  advertise them; we answer from the model's list (an entry whose REVIDR or
  AIDR is "any" is answered 0);
- guest RAM with a device tree, the kernel Image, and in front of it the
  mmio_program that reads every register with MRS and stores each to an
  MMIO address, then jumps to the kernel;
- an 8250 UART of which the kernel's earlycon writes each byte to the
  transmit register after reading the line status. Most exits of a boot
  would be the console's, so, where KVM can: the UART's page is a read-only
  memory slot whose line status always says "empty" (the read does not
  exit), and the transmit writes go to KVM's coalesced MMIO ring, which we
  empty at every exit (a full ring is one); without either, each is a
  KVM_EXIT_MMIO served here. On the nested 7.2 host this took the guest's
  boot from some 20 s to 5 s.

The board is QEMU's ``virt`` as the errata prediction assumes it (core.board):
``/chosen`` holds a ``kaslr-seed`` (8 bytes) and an ``rng-seed`` (32 bytes) as
QEMU writes them, PSCI goes by HVC.

Without a userspace it runs until the guest logs that its system-wide CPU
capability detection is done (core.guest_log.DETECTION_DONE), some 0.4 s of
guest time into the boot. With one (probe.guest_userspace: an initramfs whose
/init logs the guest's vulnerabilities files) it runs until that /init logs its
end line. A guest that stops itself first (PSCI SYSTEM_OFF or RESET:
``panic=-1``), does what this VM does not serve, or does not get there within
the deadline gives a GuestBootError with its console.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from qemu_errata.core.catalogue import Catalogue, Register
from qemu_errata.core.guest_log import detection_done, userspace_done
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import MIDR_REGISTER, REVIDR_REGISTER
from qemu_errata.core.pool import PoolModel
from qemu_errata.errors import InputError, RefusalError
from qemu_errata.probe import fdt
from qemu_errata.probe import kvm_abi as abi
from qemu_errata.probe.kernel_image import KernelImage
from qemu_errata.probe.kvm import KVM_DEVICE, Capabilities, Kernel, ScratchVm, new_vcpu
from qemu_errata.probe.kvm_run import (
    GIC_DISTRIBUTOR,
    GIC_REDISTRIBUTOR,
    DeadlineError,
    LinuxRunCalls,
    RunCalls,
    deadline,
    prepare_vcpu,
)
from qemu_errata.probe.mmio_program import (
    GuestError,
    GuestRead,
    GuestReport,
    build_boot_program,
)
from qemu_errata.probe.validate import write_model

# Guest physical layout, as on QEMU's virt machine: RAM from 1 GiB, the UART at 0x09000000,
# the vGICv3 where kvm_run puts it. The boot program is at the start of RAM, the kernel at
# the next 2 MiB boundary (plus its text_offset), the device tree in the last 2 MiB.
RAM_BASE = 0x40000000
RAM_SIZE = 256 << 20
KERNEL_BASE = RAM_BASE + (2 << 20)
DEVICE_TREE_ADDRESS = RAM_BASE + RAM_SIZE - (2 << 20)
RAM_SLOT, UART_SLOT = 0, 1
UART_BASE = 0x09000000
UART_SIZE = 0x1000
UART_TRANSMIT = 0x00  # THR, register 0
UART_LINE_STATUS = 0x14  # LSR, register 5, 4 bytes apart (mmio32)
UART_TRANSMITTER_EMPTY = 0x60  # LSR THRE | TEMT: every byte goes at once
GIC_REDISTRIBUTOR_SIZE = 0x20000  # one vCPU's two 64 KiB frames
# keep_bootcon: the kernel would drop its early console for the dummy VT console.
COMMAND_LINE = f"earlycon=uart8250,mmio32,{UART_BASE:#x} keep_bootcon panic=-1"
KASLR_SEED_BYTES, RNG_SEED_BYTES = 8, 32  # QEMU hw/arm/virt.c create_randomness()
TIMER_INTERRUPTS = (13, 14, 11, 10)  # PPIs: secure, non-secure physical, virtual, hypervisor
DEFAULT_SECONDS = 300.0

# Vendor hypervisor service calls of the target implementation list (facts file, section 5).
DISCOVER_IMPL_VER = 0xC6000040
DISCOVER_IMPL_CPUS = 0xC6000041
IMPL_VERSION = 1 << 16  # 1.0
SMCCC_SUCCESS = 0
SMCCC_INVALID_PARAMETER = (1 << 64) - 3
BMAP_2 = "KVM_REG_ARM_VENDOR_HYP_BMAP_2"
BMAP_2_DISCOVER_IMPL = 0b11
IDENTITY = (MIDR_REGISTER, REVIDR_REGISTER, "AIDR_EL1")


class GuestBootError(RefusalError):
    """The guest did not finish its CPU capability detection in time."""

    def __init__(self, message: str, console: str) -> None:
        super().__init__(message)
        self.console = console


@dataclass(frozen=True)
class TargetAnswer:
    """One DISCOVER_IMPL_CPUS call of the guest: the index it asked, the entry it got (None:
    INVALID_PARAMETER)."""

    index: int
    entry: TargetImplementation | None


@dataclass
class GuestBoot:
    """What the guest did: the registers its MRS read, its console, the list calls it made."""

    reads: dict[str, GuestRead] = field(default_factory=dict)
    console: bytearray = field(default_factory=bytearray)
    list_offered: bool = False  # BMAP_2 advertised the calls and the filter forwards them
    identity_pinned: bool = False
    version_calls: int = 0
    answers: list[TargetAnswer] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def console_text(self) -> str:
        return self.console.decode("utf-8", errors="replace")


def boot_guest(
    model: PoolModel,
    image: KernelImage,
    catalogue: Catalogue,
    *,
    seconds: float = DEFAULT_SECONDS,
    calls: RunCalls | None = None,
    device: str = KVM_DEVICE,
    userspace: bytes | None = None,
    command_line: str = "",
) -> GuestBoot:
    """Boot ``image`` on a vCPU presenting ``model`` (with ``userspace`` as its initramfs and
    ``command_line`` after the console's options); GuestBootError when the guest does not
    finish within ``seconds`` or does what this VM cannot serve."""
    initrd_start = DEVICE_TREE_ADDRESS - (-len(userspace or b"") // mmap.PAGESIZE * -mmap.PAGESIZE)
    if KERNEL_BASE + image.text_offset + image.image_size > initrd_start:
        raise InputError(f"a kernel of {image.image_size >> 20} MiB does not fit in the VM")
    calls = calls or LinuxRunCalls()
    kernel = Kernel(calls, device)
    boot = GuestBoot()
    registers = guest_registers(model, catalogue)
    program = build_boot_program(
        [r.encoding for r in registers if r.encoding is not None],
        RAM_BASE,
        KERNEL_BASE + image.text_offset,
        DEVICE_TREE_ADDRESS,
    )
    with contextlib.ExitStack() as open_fds:
        system = kernel.open(open_fds)
        scratch, capabilities = _present(kernel, system, model, catalogue, open_fds, boot)
        ram = calls.map(-1, RAM_SIZE)
        open_fds.callback(ram.close)
        _load(ram, 0, program.code)
        _load(ram, KERNEL_BASE + image.text_offset - RAM_BASE, image.data)
        initrd = None
        if userspace is not None:
            _load(ram, initrd_start - RAM_BASE, userspace)
            initrd = (initrd_start, initrd_start + len(userspace))
        arguments = " ".join(a for a in (COMMAND_LINE, command_line) if a)
        tree = device_tree(arguments, initrd)
        _load(ram, DEVICE_TREE_ADDRESS - RAM_BASE, fdt.write_dtb(tree))
        _map(kernel, scratch.vm, ram, RAM_SLOT, RAM_BASE)
        if capabilities.has(abi.KVM_CAP_READONLY_MEM):
            uart = calls.map(-1, max(UART_SIZE, mmap.PAGESIZE))  # a slot is whole host pages
            open_fds.callback(uart.close)
            _load(uart, UART_LINE_STATUS, UART_TRANSMITTER_EMPTY.to_bytes(4, "little"))
            _map(kernel, scratch.vm, uart, UART_SLOT, UART_BASE, flags=abi.KVM_MEM_READONLY)
        _set_register(kernel, scratch.vcpu, abi.KVM_REG_ARM_CORE_PC, program.entry_address, "pc")
        size = kernel.ioctl(system, abi.KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE")
        run = calls.map(scratch.vcpu, size)
        open_fds.callback(run.close)
        report = GuestReport(program)
        exits = _Exits(
            kernel,
            scratch.vcpu,
            run,
            model=model,
            report=report,
            boot=boot,
            ring=_coalesce_console(kernel, scratch.vm, capabilities),
            done=detection_done if userspace is None else userspace_done,
        )
        started = time.monotonic()
        try:
            with deadline(seconds):
                _run(exits)
        except DeadlineError:
            exits.take_coalesced()
            boot.seconds = time.monotonic() - started
            raise GuestBootError(
                f"the guest did not finish its CPU feature detection within {seconds:g} s",
                boot.console_text,
            ) from None
        except GuestError as error:
            raise GuestBootError(f"the guest failed: {error}", boot.console_text) from None
        boot.seconds = time.monotonic() - started
        boot.reads = {registers[i].name: read for i, read in report.reads.items()}
    return boot


def _present(  # noqa: PLR0917 (the fds and the record the boot is made with)
    kernel: Kernel,
    system: int,
    model: PoolModel,
    catalogue: Catalogue,
    open_fds: contextlib.ExitStack,
    boot: GuestBoot,
) -> tuple[ScratchVm, Capabilities]:
    """A VM whose vCPU presents ``model`` and whose hypervisor calls offer its target list,
    ready for its first run; InputError when KVM refuses a register of the model."""
    vm = kernel.new_fd(open_fds, system, abi.KVM_CREATE_VM, 0, "KVM_CREATE_VM")
    capabilities = Capabilities(kernel, vm)
    if any(name in model.id_registers for name in IDENTITY) and capabilities.has(
        abi.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS
    ):
        kernel.ioctl(
            vm,
            abi.KVM_ENABLE_CAP,
            abi.enable_cap(abi.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS),
            "KVM_ENABLE_CAP WRITABLE_IMP_ID_REGS",
        )
        boot.identity_pinned = True
    scratch = new_vcpu(kernel, system, vm, capabilities, open_fds)
    refused = [v for v in write_model(kernel, scratch, model, catalogue) if not v.accepted]
    if refused:
        reasons = "; ".join(f"{v.register} = {v.value:#x}: {v.reason}" for v in refused)
        raise InputError(f"this host's KVM refuses the model: {reasons}")
    boot.list_offered = _offer_target_list(kernel, scratch, catalogue)
    prepare_vcpu(kernel, scratch)
    return scratch, capabilities


def guest_registers(model: PoolModel, catalogue: Catalogue) -> list[Register]:
    """The registers the guest reads with MRS: MIDR/REVIDR/AIDR, then every ID register of the
    model in KVM's feature ID range (those the model sets)."""
    names = [*IDENTITY, *(n for n in model.id_registers if n not in IDENTITY)]
    return [
        register
        for name in names
        if (register := catalogue.get(name)) is not None and register.kvm_mask_index is not None
    ]


def device_tree(command_line: str, initrd: tuple[int, int] | None = None) -> fdt.Node:
    """The tree of the VM: /chosen as QEMU's virt board writes it (the command line, the
    initrd's bounds, fresh KASLR and RNG seeds), memory, one PSCI-started CPU, the vGICv3,
    the timer."""
    gic_phandle = 1
    chosen = {
        "bootargs": fdt.string(command_line),
        "kaslr-seed": os.urandom(KASLR_SEED_BYTES),
        "rng-seed": os.urandom(RNG_SEED_BYTES),
    }
    if initrd is not None:
        chosen["linux,initrd-start"] = fdt.address_cells(initrd[0])
        chosen["linux,initrd-end"] = fdt.address_cells(initrd[1])
    return fdt.Node(
        "",
        {
            "#address-cells": fdt.cells(2),
            "#size-cells": fdt.cells(2),
            "compatible": fdt.string("linux,dummy-virt"),
            "interrupt-parent": fdt.cells(gic_phandle),
        },
        [
            fdt.Node("chosen", chosen),
            fdt.Node(
                f"memory@{RAM_BASE:x}",
                {
                    "device_type": fdt.string("memory"),
                    "reg": fdt.address_cells(RAM_BASE, RAM_SIZE),
                },
            ),
            fdt.Node(
                "cpus",
                {"#address-cells": fdt.cells(1), "#size-cells": fdt.cells(0)},
                [
                    fdt.Node(
                        "cpu@0",
                        {
                            "device_type": fdt.string("cpu"),
                            "compatible": fdt.string("arm,armv8"),
                            "reg": fdt.cells(0),
                            "enable-method": fdt.string("psci"),
                        },
                    )
                ],
            ),
            fdt.Node(
                "psci",
                {
                    "compatible": fdt.strings(["arm,psci-1.0", "arm,psci-0.2"]),
                    "method": fdt.string("hvc"),
                },
            ),
            fdt.Node(
                f"intc@{GIC_DISTRIBUTOR:x}",
                {
                    "compatible": fdt.string("arm,gic-v3"),
                    "#interrupt-cells": fdt.cells(3),
                    "interrupt-controller": b"",
                    "reg": fdt.address_cells(
                        GIC_DISTRIBUTOR, 0x10000, GIC_REDISTRIBUTOR, GIC_REDISTRIBUTOR_SIZE
                    ),
                    "phandle": fdt.cells(gic_phandle),
                },
            ),
            fdt.Node(
                "timer",
                {
                    "compatible": fdt.string("arm,armv8-timer"),
                    # <PPI, number, level-high> each
                    "interrupts": fdt.cells(*(c for n in TIMER_INTERRUPTS for c in (1, n, 4))),
                    "always-on": b"",
                },
            ),
        ],
    )


def _load(ram: mmap.mmap, offset: int, data: bytes) -> None:
    ram[offset : offset + len(data)] = data


def _map(
    kernel: Kernel, vm: int, memory: mmap.mmap, slot: int, guest_address: int, *, flags: int = 0
) -> None:
    """Give the guest ``memory`` at ``guest_address`` (the mapping outlives the VM's fds)."""
    address = ctypes.addressof(ctypes.c_char.from_buffer(memory))  # released at once
    kernel.ioctl(
        vm,
        abi.KVM_SET_USER_MEMORY_REGION,
        abi.user_memory_region(slot, guest_address, len(memory), address, flags),
        f"KVM_SET_USER_MEMORY_REGION {slot}",
    )


def _set_register(kernel: Kernel, vcpu: int, register_id: int, value: int, name: str) -> None:
    data = ctypes.c_uint64(value)
    kernel.ioctl(
        vcpu,
        abi.KVM_SET_ONE_REG,
        abi.one_reg(register_id, ctypes.addressof(data)),
        f"KVM_SET_ONE_REG {name}",
    )


def _get_register(kernel: Kernel, vcpu: int, register_id: int, name: str) -> int:
    data = ctypes.c_uint64()
    kernel.ioctl(
        vcpu,
        abi.KVM_GET_ONE_REG,
        abi.one_reg(register_id, ctypes.addressof(data)),
        f"KVM_GET_ONE_REG {name}",
    )
    return int(data.value)


def _coalesce_console(kernel: Kernel, vm: int, capabilities: Capabilities) -> int | None:
    """Where KVM can, have it keep the console's transmit writes in its coalesced MMIO ring
    rather than exit for each (a boot's exits are mostly the console's): the byte offset of
    the ring in the vCPU's mapping, or None."""
    page = capabilities.value(abi.KVM_CAP_COALESCED_MMIO)
    if page <= 0:
        return None
    kernel.ioctl(
        vm,
        abi.KVM_REGISTER_COALESCED_MMIO,
        abi.coalesced_mmio_zone(UART_BASE + UART_TRANSMIT, 4),
        "KVM_REGISTER_COALESCED_MMIO",
    )
    return page * mmap.PAGESIZE


def _offer_target_list(kernel: Kernel, scratch: ScratchVm, catalogue: Catalogue) -> bool:
    """Forward the two list calls to us and advertise them, where the kernel has both
    (BMAP_2 from Linux 6.15, the SMCCC filter from 6.4); whether it does."""
    bitmap = catalogue[BMAP_2]
    current = kernel.get_one_reg(scratch.vcpu, bitmap)
    if current is None:
        return False
    forwarded = ctypes.create_string_buffer(
        bytes(abi.smccc_filter(DISCOVER_IMPL_VER, 2, abi.KVM_SMCCC_FILTER_FWD_TO_USER))
    )
    try:
        kernel.calls.ioctl(
            scratch.vm,
            abi.KVM_SET_DEVICE_ATTR,
            abi.device_attr(
                abi.KVM_ARM_VM_SMCCC_CTRL, abi.KVM_ARM_VM_SMCCC_FILTER, ctypes.addressof(forwarded)
            ),
        )
    except OSError as error:
        if error.errno in (errno.ENXIO, errno.EINVAL, errno.ENOTTY):
            return False
        raise kernel.fail("KVM_SET_DEVICE_ATTR (SMCCC filter)", error) from None
    _set_register(kernel, scratch.vcpu, bitmap.one_reg_id, current | BMAP_2_DISCOVER_IMPL, BMAP_2)
    return True


class _Exits:
    """Serves the exits of one boot: the UART, the register window, the list calls."""

    def __init__(
        self,
        kernel: Kernel,
        vcpu: int,
        run: mmap.mmap,
        *,
        model: PoolModel,
        report: GuestReport,
        boot: GuestBoot,
        ring: int | None,
        done: Callable[[str], bool],
    ) -> None:
        self.kernel, self.vcpu, self.run, self.model = kernel, vcpu, run, model
        self.report, self.boot, self.ring, self.done = report, boot, ring, done
        self._line = bytearray()
        self._done = False

    def take_coalesced(self) -> bool:
        """Take the console bytes KVM kept in its ring rather than exiting for each; whether
        the guest has now logged that detection is done (the console stops at that line)."""
        if self.ring is None:
            return False
        writes = abi.take_coalesced(self.run, self.ring, abi.coalesced_capacity(mmap.PAGESIZE))
        return any(self._console(data[0]) for _, data in writes)

    def mmio(self) -> bool:
        """Serve a KVM_EXIT_MMIO; whether the guest has now logged that detection is done."""
        address, data, is_write = abi.mmio_exit(self.run)
        offset = address - UART_BASE
        if 0 <= offset < UART_SIZE:
            if not is_write:
                status = UART_TRANSMITTER_EMPTY if offset == UART_LINE_STATUS else 0
                start = abi.RUN_MMIO_DATA_OFFSET
                self.run[start : start + len(data)] = status.to_bytes(len(data), "little")
            elif offset == UART_TRANSMIT:
                return self._console(data[0])
        elif is_write and len(data) == 8 and not self.report.done:
            self.report.store(address, int.from_bytes(data, "little"))
        else:
            raise GuestError(
                f"a {len(data)}-byte MMIO {'store' if is_write else 'load'} at "
                f"{address:#x}, outside the console and the register window"
            )
        return False

    def _console(self, byte: int) -> bool:
        """Take one byte of the console; whether detection is done (bytes after it, which
        the ring may hold, are dropped)."""
        if self._done:
            return True
        self.boot.console.append(byte)
        if byte != ord("\n"):
            self._line.append(byte)
            return False
        self._done = self.done(self._line.decode("utf-8", errors="replace"))
        self._line.clear()
        return self._done

    def hypercall(self) -> None:
        _answer(self.kernel, self.vcpu, abi.hypercall_function(self.run), self.model, self.boot)


def _run(exits: _Exits) -> None:
    """Run until the detection is done; GuestError for a guest that stops first or makes an
    exit we do not serve."""
    while True:
        exits.kernel.ioctl(exits.vcpu, abi.KVM_RUN, 0, "KVM_RUN")
        if exits.take_coalesced():
            return
        reason = abi.exit_reason(exits.run)
        if reason == abi.KVM_EXIT_MMIO:
            if exits.mmio():
                return
        elif reason == abi.KVM_EXIT_HYPERCALL:
            exits.hypercall()
        elif reason == abi.KVM_EXIT_SYSTEM_EVENT:
            kind = abi.system_event_type(exits.run)
            raise GuestError(
                f"it stopped ({abi.SYSTEM_EVENT_NAMES.get(kind, f'system event {kind}')}) "
                "before it was done (its CPU detection, or its userspace when it has one)"
            )
        else:
            raise GuestError(f"KVM_RUN exit reason {reason}")


def _answer(kernel: Kernel, vcpu: int, function: int, model: PoolModel, boot: GuestBoot) -> None:
    """Answer one forwarded list call in x0-x3, as the facts file (section 5) describes."""
    targets = model.target_implementations
    if function == DISCOVER_IMPL_VER:
        boot.version_calls += 1
        results: Sequence[int] = (SMCCC_SUCCESS, IMPL_VERSION, len(targets), 0)
    elif function == DISCOVER_IMPL_CPUS:
        index = _get_register(kernel, vcpu, abi.core_x_register(1), "x1")
        entry = targets[index] if index < len(targets) else None
        boot.answers.append(TargetAnswer(index, entry))
        results = (
            (SMCCC_INVALID_PARAMETER, 0, 0, 0)
            if entry is None
            else (SMCCC_SUCCESS, entry.midr, entry.revidr or 0, entry.aidr or 0)
        )
    else:
        raise GuestError(f"a hypercall {function:#x} we did not ask to be forwarded")
    for number, value in enumerate(results):
        _set_register(kernel, vcpu, abi.core_x_register(number), value, f"x{number}")
