"""The kvm backend: what this host's KVM gives a new VM. Pure Python, standard library only.

Opens /dev/kvm, creates a scratch VM, reads KVM's writable ID-register
masks, creates and initialises one vCPU with the features a VMM enables by
default when the kernel offers them (PSCI 0.2, PMUv3, SVE, pointer
authentication: what QEMU's ``-cpu host`` asks for, and they change what
the ID registers show), creates a vGICv3 when it can, then reads every
catalogued ID register, the firmware pseudo-registers and the GIC
CPU-interface registers. Nothing is ever run or written. Every fd is
closed, also on error. A kernel without an ioctl gives a profile that says
so (e.g. masks null) rather than an error.

The kernel calls go through ``KernelCalls`` so that tests can stand in for
the kernel; the struct layouts are in kvm_abi.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import platform
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from qemu_errata.core.catalogue import Catalogue, Register, load_catalogue
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.core.registers_table import ID_REGISTER_KINDS, Kind
from qemu_errata.errors import ProbeError
from qemu_errata.probe import kvm_abi as abi
from qemu_errata.probe.el0 import untrapped_value
from qemu_errata.probe.sysfs import DEFAULT_SYSFS_ROOT, read_implementations
from qemu_errata.probe.timer import DEFAULT_DEVICE_TREE, read_timer_frequency

KVM_DEVICE = "/dev/kvm"
# A register this kernel does not know: a GET_ONE_REG or device attribute refused this way.
_UNKNOWN_REGISTER = (errno.ENOENT, errno.EINVAL)
# An ioctl this kernel does not have.
_NO_SUCH_IOCTL = (errno.ENOTTY, errno.EINVAL)


class KernelCalls(Protocol):
    """The three system calls the probe makes; errors are OSError with an errno."""

    def open(self, path: str) -> int: ...

    def ioctl(self, fd: int, request: int, argument: int | bytearray) -> int: ...

    def close(self, fd: int) -> None: ...


class LinuxCalls:
    """The real kernel."""

    def open(self, path: str) -> int:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)

    def ioctl(self, fd: int, request: int, argument: int | bytearray) -> int:
        return fcntl.ioctl(fd, request, argument)

    def close(self, fd: int) -> None:
        os.close(fd)


@dataclass(frozen=True)
class KvmReading:
    """Everything read through /dev/kvm."""

    id_registers: Mapping[str, int]
    writable_masks: Mapping[str, int] | None
    firmware_registers: Mapping[str, int]
    gic_registers: Mapping[str, int]
    capabilities: Mapping[str, bool]
    vcpu_features: tuple[str, ...]
    not_offered: tuple[str, ...]  # catalogued registers this kernel refused to read


# vCPU features a VMM enables by default, each with the capability saying the kernel has it.
_VCPU_FEATURES = (
    ("psci-0.2", (abi.KVM_CAP_ARM_PSCI_0_2,), (abi.KVM_ARM_VCPU_PSCI_0_2,)),
    ("pmu-v3", (abi.KVM_CAP_ARM_PMU_V3,), (abi.KVM_ARM_VCPU_PMU_V3,)),
    ("sve", (abi.KVM_CAP_ARM_SVE,), (abi.KVM_ARM_VCPU_SVE,)),
    # Address and generic authentication come together or not at all.
    (
        "ptrauth",
        (abi.KVM_CAP_ARM_PTRAUTH_ADDRESS, abi.KVM_CAP_ARM_PTRAUTH_GENERIC),
        (abi.KVM_ARM_VCPU_PTRAUTH_ADDRESS, abi.KVM_ARM_VCPU_PTRAUTH_GENERIC),
    ),
)


def probe_kvm(
    host: str | None = None,
    sysfs_root: Path = DEFAULT_SYSFS_ROOT,
    device_tree: Path = DEFAULT_DEVICE_TREE,
    calls: KernelCalls | None = None,
) -> HostProfile:
    """This host's profile: implementations from sysfs, registers from KVM, the timer frequency."""
    catalogue = load_catalogue()
    reading = read_kvm(calls or LinuxCalls(), catalogue)
    at_el0 = _read_at_el0(reading, catalogue)
    implementations, unidentified = read_implementations(sysfs_root)
    frequency, frequency_source = read_timer_frequency(device_tree)
    aidr = reading.id_registers.get("AIDR_EL1")
    if len(implementations) == 1 and aidr is not None:
        # sysfs has no AIDR; KVM's is the boot CPU's, which is every CPU's on a host
        # with one implementation.
        implementations = (replace(implementations[0], aidr=aidr),)
    return HostProfile(
        host=host or socket.gethostname(),
        implementations=implementations,
        id_registers={**reading.id_registers, **at_el0},
        writable_masks=reading.writable_masks,
        timer_frequency_hz=frequency,
        firmware_registers=reading.firmware_registers,
        gic_registers=reading.gic_registers,
        capabilities=reading.capabilities,
        provenance={
            **_provenance(reading, frequency_source, sysfs_root, unidentified),
            "registers_read_at_el0": sorted(at_el0),
        },
    )


def _read_at_el0(reading: KvmReading, catalogue: Catalogue) -> dict[str, int]:
    """Registers KVM does not offer but a guest reads untrapped at EL0 (DCZID_EL0): their
    hardware values, instead of the zero of an unoffered register."""
    values = {}
    for name in reading.not_offered:
        value = untrapped_value(catalogue[name].encoding)
        if value is not None:
            values[name] = value
    return values


def _provenance(
    reading: KvmReading, frequency_source: str, sysfs_root: Path, unidentified: tuple[int, ...]
) -> dict[str, Any]:
    return {
        "backend": "kvm",
        "kernel": platform.release(),
        "registers": (
            "the values KVM gives a new VM with a vGICv3 and these vCPU features, "
            "before userspace writes any"
        ),
        "vcpu_features": list(reading.vcpu_features),
        "registers_not_offered": list(reading.not_offered),
        "timer_frequency_source": frequency_source,
        "sysfs_root": str(sysfs_root),
        "cpus_without_identity": list(unidentified),
    }


def read_kvm(calls: KernelCalls, catalogue: Catalogue, device: str = KVM_DEVICE) -> KvmReading:
    """Read everything through ``device``; ProbeError when it is not a usable arm64 KVM."""
    kernel = Kernel(calls, device)
    with contextlib.ExitStack() as open_fds:
        system = kernel.open(open_fds)
        vm = kernel.new_fd(open_fds, system, abi.KVM_CREATE_VM, 0, "KVM_CREATE_VM")
        capabilities = Capabilities(kernel, vm)
        masks = _writable_masks(kernel, vm, capabilities, catalogue)
        scratch = new_vcpu(kernel, system, vm, capabilities, open_fds)
        vcpu, gic = scratch.vcpu, scratch.gic
        not_offered: list[str] = []
        id_registers = {}
        for register in catalogue.of_kind(*ID_REGISTER_KINDS):
            value = kernel.get_one_reg(vcpu, register)
            if value is None:
                not_offered.append(register.name)
            # As KVM makes unallocated ID registers read as zero (and as the qemu probe
            # reports registers a CPU lacks), a register this kernel does not offer is zero.
            id_registers[register.name] = value or 0
        firmware = _read_all(
            catalogue.of_kind(Kind.FIRMWARE), not_offered, lambda r: kernel.get_one_reg(vcpu, r)
        )
        gic_registers = (
            {}
            if gic is None
            else _read_all(
                [r for r in catalogue.of_kind(Kind.GIC) if r.encoding is not None],
                not_offered,
                lambda r: kernel.get_vgic_sysreg(gic, r),
            )
        )
        reading = KvmReading(
            id_registers=id_registers,
            writable_masks=masks,
            firmware_registers=firmware,
            gic_registers=gic_registers,
            capabilities={
                "writable_masks": masks is not None,
                "writable_imp_id_regs": capabilities.has(abi.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS),
                "vgic_v3": gic is not None,
            },
            vcpu_features=scratch.features,
            not_offered=tuple(not_offered),
        )
    return reading


@dataclass(frozen=True)
class ScratchVm:
    """The fds of a VM made as the kvm probe makes it (KVM device, VM, its one vCPU, its
    vGICv3 or None) and the vCPU's features (kvm.init_vcpu's names)."""

    system: int
    vm: int
    vcpu: int
    gic: int | None
    features: tuple[str, ...]


def new_vcpu(
    kernel: Kernel,
    system: int,
    vm: int,
    capabilities: Capabilities,
    open_fds: contextlib.ExitStack,
) -> ScratchVm:
    """The VM's one vCPU, initialised with the default features, and its vGICv3: the VM
    the probe reads and kvm-validate writes, made the same way for both."""
    vcpu = kernel.new_fd(open_fds, vm, abi.KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU")
    features = init_vcpu(kernel, vm, vcpu, capabilities)
    return ScratchVm(system, vm, vcpu, create_vgic(kernel, vm, open_fds), features)


def _read_all(
    registers: Iterable[Register], not_offered: list[str], read: Callable[[Register], int | None]
) -> dict[str, int]:
    """Each register ``read`` gives a value; the others are added to ``not_offered``."""
    values = {}
    for register in registers:
        value = read(register)
        if value is None:
            not_offered.append(register.name)
        else:
            values[register.name] = value
    return values


def elsewhere() -> str:
    """On a machine that is not arm64, where a command that needs an arm64 KVM can run."""
    machine = platform.machine()
    if machine == "aarch64":
        return ""
    return (
        f"; this is an {machine} machine: `qemu-errata nested --cpu MODEL -- COMMAND ...` "
        "runs a command on a nested arm64 KVM host (QEMU TCG)"
    )


class Kernel:
    """``calls`` on one KVM device, errors turned into one-line ProbeErrors naming it and the ioctl.

    Shared with kvm-validate, which makes its scratch VMs as the probe does.
    """

    def __init__(self, calls: KernelCalls, device: str) -> None:
        self.calls = calls
        self.device = device

    def fail(self, what: str, error: OSError) -> ProbeError:
        reason = error.strerror or (os.strerror(error.errno) if error.errno else str(error))
        return ProbeError(f"{self.device}: {what}: {reason}")

    def open(self, open_fds: contextlib.ExitStack) -> int:
        """The device's fd (closed by ``open_fds``), once it speaks the KVM API we know."""
        try:
            fd = self.calls.open(self.device)
        except FileNotFoundError:
            raise ProbeError(
                f"{self.device}: not present: no KVM on this host (the sysfs backend reads "
                f"its CPU implementations only){elsewhere()}"
            ) from None
        except OSError as error:
            raise self.fail("cannot open", error) from None
        open_fds.callback(self.calls.close, fd)
        version = self.ioctl(fd, abi.KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION")
        if version != abi.KVM_API_VERSION:
            raise ProbeError(
                f"{self.device}: KVM API version {version}, expected {abi.KVM_API_VERSION}"
            )
        return fd

    def ioctl(self, fd: int, request: int, argument: int | bytearray, name: str) -> int:
        try:
            return self.calls.ioctl(fd, request, argument)
        except OSError as error:
            raise self.fail(name, error) from None

    def new_fd(
        self, open_fds: contextlib.ExitStack, fd: int, request: int, argument: int, name: str
    ) -> int:
        new = self.ioctl(fd, request, argument, name)
        open_fds.callback(self.calls.close, new)
        return new

    def get_one_reg(self, vcpu: int, register: Register) -> int | None:
        """The register's value, or None when this kernel does not offer it."""
        value = ctypes.c_uint64()
        request = abi.one_reg(register.one_reg_id, ctypes.addressof(value))
        return self._read(
            vcpu, abi.KVM_GET_ONE_REG, request, f"KVM_GET_ONE_REG {register.name}", value
        )

    def get_vgic_sysreg(self, gic: int, register: Register) -> int | None:
        assert register.encoding is not None
        value = ctypes.c_uint64()
        request = abi.device_attr(
            abi.KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS,
            abi.vgic_sysreg_attr(register.encoding),
            ctypes.addressof(value),
        )
        return self._read(
            gic, abi.KVM_GET_DEVICE_ATTR, request, f"KVM_GET_DEVICE_ATTR {register.name}", value
        )

    def _read(
        self, fd: int, request: int, argument: bytearray, name: str, value: ctypes.c_uint64
    ) -> int | None:
        try:
            self.calls.ioctl(fd, request, argument)
        except OSError as error:
            if error.errno in _UNKNOWN_REGISTER:
                return None
            raise self.fail(name, error) from None
        return int(value.value)


class Capabilities:
    """KVM_CHECK_EXTENSION on the VM (some answers depend on the VM), asked once each."""

    def __init__(self, kernel: Kernel, vm: int) -> None:
        self._kernel = kernel
        self._vm = vm
        self._answers: dict[int, int] = {}

    def value(self, capability: int) -> int:
        if capability not in self._answers:
            self._answers[capability] = self._kernel.ioctl(
                self._vm, abi.KVM_CHECK_EXTENSION, capability, f"KVM_CHECK_EXTENSION {capability}"
            )
        return self._answers[capability]

    def has(self, capability: int) -> bool:
        return self.value(capability) > 0


def _writable_masks(
    kernel: Kernel, vm: int, capabilities: Capabilities, catalogue: Catalogue
) -> dict[str, int] | None:
    """Every catalogued register's mask in the feature ID range; None: the kernel cannot tell."""
    ranges = capabilities.value(abi.KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES)
    if not ranges >> abi.FEATURE_ID_RANGE & 1:
        return None
    masks = (ctypes.c_uint64 * abi.WRITABLE_MASKS_COUNT)()
    request = abi.reg_mask_range(ctypes.addressof(masks))
    try:
        kernel.calls.ioctl(vm, abi.KVM_ARM_GET_REG_WRITABLE_MASKS, request)
    except OSError as error:
        if error.errno in _NO_SUCH_IOCTL:
            return None
        raise kernel.fail("KVM_ARM_GET_REG_WRITABLE_MASKS", error) from None
    return {
        register.name: int(masks[index])
        for register in catalogue.values()
        if (index := register.kvm_mask_index) is not None
    }


def init_vcpu(kernel: Kernel, vm: int, vcpu: int, capabilities: Capabilities) -> tuple[str, ...]:
    """Initialise the vCPU with the _VCPU_FEATURES the kernel has; their names."""
    preferred = abi.vcpu_init(0, ())
    try:
        kernel.calls.ioctl(vm, abi.KVM_ARM_PREFERRED_TARGET, preferred)
    except OSError as error:
        if error.errno == errno.ENOTTY:
            raise ProbeError(
                f"{kernel.device}: not an arm64 KVM (no KVM_ARM_PREFERRED_TARGET){elsewhere()}"
            ) from None
        raise kernel.fail("KVM_ARM_PREFERRED_TARGET", error) from None
    names: list[str] = []
    bits: list[int] = []
    for name, needed, feature_bits in _VCPU_FEATURES:
        if all(capabilities.has(c) for c in needed):
            names.append(name)
            bits.extend(feature_bits)
    init = abi.vcpu_init(abi.vcpu_init_target(preferred), bits)
    kernel.ioctl(vcpu, abi.KVM_ARM_VCPU_INIT, init, f"KVM_ARM_VCPU_INIT ({', '.join(names)})")
    return tuple(names)


def create_vgic(kernel: Kernel, vm: int, open_fds: contextlib.ExitStack) -> int | None:
    """An initialised vGICv3's fd, or None where the host cannot emulate one."""
    request = abi.create_device(abi.KVM_DEV_TYPE_ARM_VGIC_V3)
    try:
        kernel.calls.ioctl(vm, abi.KVM_CREATE_DEVICE, request)
    except OSError:
        return None  # e.g. ENODEV on a GICv2 host
    gic = abi.created_device_fd(request)
    open_fds.callback(kernel.calls.close, gic)
    init = abi.device_attr(abi.KVM_DEV_ARM_VGIC_GRP_CTRL, abi.KVM_DEV_ARM_VGIC_CTRL_INIT, 0)
    try:
        kernel.calls.ioctl(gic, abi.KVM_SET_DEVICE_ATTR, init)
    except OSError:
        return None
    return gic
