"""Run a guest on a vCPU whose registers were written, to see what it reads. Standard library only.

``kvm-validate --run`` writes a model's registers, then calls ``run_guest``:
it does what a VMM does before the first KVM_RUN (vGICv3 addresses, the PMU's
interrupt and init, SVE finalisation, as the vCPU's features need), maps one
slot of anonymous memory as guest RAM holding the mmio_program, sets the PC,
and runs the vCPU: every exit must be one of the program's MMIO stores,
read from the struct kvm_run mapped from the vCPU fd. The run is bounded by
a count of exits and a wall-clock deadline (SIGALRM interrupts KVM_RUN);
both mappings are unmapped on every path, and the vCPU fd remains the
caller's. A vCPU the kernel will not run, or a guest that does something
the program does not, gives an error text rather than an exception: it is
part of the report.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import signal
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

from qemu_errata.core.catalogue import Register
from qemu_errata.errors import ProbeError
from qemu_errata.probe import kvm_abi as abi
from qemu_errata.probe.kvm import Kernel, KernelCalls, LinuxCalls, ScratchVm
from qemu_errata.probe.mmio_program import (
    RAM_BASE,
    RAM_SIZE,
    GuestError,
    GuestRead,
    GuestReport,
    build_program,
)

RUN_SECONDS = 20.0  # a few dozen exits take well under a second even on a TCG-emulated host
# QEMU's virt machine layout: clear of the program's RAM and MMIO window.
GIC_DISTRIBUTOR = 0x08000000
GIC_REDISTRIBUTOR = 0x080A0000
_PMU_INTERRUPT = 23  # PPI 7, as on QEMU's virt machine


class RunCalls(KernelCalls, Protocol):
    """The kernel calls, and mmap: of a vCPU fd (its struct kvm_run) or, fd -1, anonymous."""

    def map(self, fd: int, size: int) -> mmap.mmap: ...


class LinuxRunCalls(LinuxCalls):
    """The real kernel."""

    def map(self, fd: int, size: int) -> mmap.mmap:
        if fd < 0:
            return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        return mmap.mmap(fd, size)


@dataclass(frozen=True)
class GuestRun:
    """What the guest read from each register it got to; why it stopped early ("" if it did not)."""

    reads: Mapping[str, GuestRead]
    error: str


class DeadlineError(Exception):
    """The deadline passed during KVM_RUN."""


def run_guest(
    kernel: Kernel, calls: RunCalls, target: ScratchVm, registers: Sequence[Register]
) -> GuestRun:
    """Run the program reading ``registers`` on the VM's vCPU, once."""
    readable = [register for register in registers if register.encoding is not None]
    program = build_program(
        [register.encoding for register in readable if register.encoding is not None]
    )
    report = GuestReport(program)
    try:
        prepare_vcpu(kernel, target)
        size = kernel.ioctl(target.system, abi.KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE")
        with contextlib.ExitStack() as mappings:
            ram = calls.map(-1, RAM_SIZE)
            mappings.callback(ram.close)
            ram[: len(program.code)] = program.code
            address = ctypes.addressof(ctypes.c_char.from_buffer(ram))  # released at once
            kernel.ioctl(
                target.vm,
                abi.KVM_SET_USER_MEMORY_REGION,
                abi.user_memory_region(0, RAM_BASE, RAM_SIZE, address),
                "KVM_SET_USER_MEMORY_REGION",
            )
            pc = ctypes.c_uint64(program.entry_address)
            kernel.ioctl(
                target.vcpu,
                abi.KVM_SET_ONE_REG,
                abi.one_reg(abi.KVM_REG_ARM_CORE_PC, ctypes.addressof(pc)),
                "KVM_SET_ONE_REG pc",
            )
            run = calls.map(target.vcpu, size)
            mappings.callback(run.close)
            _run(kernel, target.vcpu, run, report)
        error = ""
    except (ProbeError, GuestError) as failure:
        error = str(failure)
    return GuestRun({readable[index].name: read for index, read in report.reads.items()}, error)


def prepare_vcpu(kernel: Kernel, target: ScratchVm) -> None:
    """What KVM wants before a vCPU's first run, as a VMM does it."""
    if target.gic is not None:
        for kind, address in (
            (abi.KVM_VGIC_V3_ADDR_TYPE_DIST, GIC_DISTRIBUTOR),
            (abi.KVM_VGIC_V3_ADDR_TYPE_REDIST, GIC_REDISTRIBUTOR),
        ):
            set_attribute(
                kernel,
                target.gic,
                (abi.KVM_DEV_ARM_VGIC_GRP_ADDR, kind),
                ctypes.c_uint64(address),
                "vGICv3 address",
            )
    if "pmu-v3" in target.features:
        if target.gic is not None:  # without an in-kernel GIC the PMU has no interrupt
            set_attribute(
                kernel,
                target.vcpu,
                (abi.KVM_ARM_VCPU_PMU_V3_CTRL, abi.KVM_ARM_VCPU_PMU_V3_IRQ),
                ctypes.c_int(_PMU_INTERRUPT),
                "PMU interrupt",
            )
        set_attribute(
            kernel,
            target.vcpu,
            (abi.KVM_ARM_VCPU_PMU_V3_CTRL, abi.KVM_ARM_VCPU_PMU_V3_INIT),
            None,
            "PMU init",
        )
    if "sve" in target.features:
        kernel.ioctl(
            target.vcpu,
            abi.KVM_ARM_VCPU_FINALIZE,
            bytearray(struct.pack("=i", abi.KVM_ARM_VCPU_SVE)),
            "KVM_ARM_VCPU_FINALIZE",
        )


def set_attribute(
    kernel: Kernel,
    fd: int,
    attribute: tuple[int, int],
    value: ctypes.c_uint64 | ctypes.c_int | None,
    what: str,
) -> None:
    """Set the (group, attribute) of a device or vCPU to ``value`` (None: no argument)."""
    address = 0 if value is None else ctypes.addressof(value)
    kernel.ioctl(
        fd,
        abi.KVM_SET_DEVICE_ATTR,
        abi.device_attr(*attribute, address),
        f"KVM_SET_DEVICE_ATTR ({what})",
    )


def _run(kernel: Kernel, vcpu: int, run: mmap.mmap, report: GuestReport) -> None:
    """Run until the program's last store; GuestError for anything else."""
    try:
        with deadline(RUN_SECONDS):
            for _ in range(report.program.max_stores):
                kernel.ioctl(vcpu, abi.KVM_RUN, 0, "KVM_RUN")
                reason = abi.exit_reason(run)
                if reason != abi.KVM_EXIT_MMIO:
                    raise GuestError(f"KVM_RUN exit reason {reason}, not an MMIO store")
                address, data, is_write = abi.mmio_exit(run)
                if not is_write or len(data) != 8:
                    raise GuestError(
                        f"a {len(data)}-byte MMIO {'store' if is_write else 'load'}"
                        f" at {address:#x}, not a 64-bit store"
                    )
                report.store(address, int.from_bytes(data, "little"))
                if report.done:
                    return
    except DeadlineError:
        raise GuestError(f"no end within {RUN_SECONDS:g} s") from None
    raise GuestError(f"no end after {report.program.max_stores} MMIO stores")


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise DeadlineError in this (main) thread after ``seconds``; KVM_RUN returns on it."""

    def expire(signal_number: int, frame: FrameType | None) -> None:
        raise DeadlineError

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
