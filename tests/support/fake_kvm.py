"""A stand-in for arm64 KVM: answers the probe's ioctls from tables.

``FakeKvm`` decodes the structs, writes answers through their pointers and
refuses unknown registers with ENOENT, the way arm64 KVM does; each test
changes one thing, such as an older kernel without an ioctl.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Mapping
from typing import Any

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.probe import kvm_abi as abi
from qemu_errata.probe.kvm import KVM_DEVICE

CATALOGUE = load_catalogue()
# Register values as a Neoverse-N1 host would give them (QEMU's model, for realism).
ID_REGISTERS = {
    CATALOGUE[name].one_reg_id: value
    for name, value in load_embedded_profile("qemu-neoverse-n1").id_registers.items()
}
FIRMWARE = {
    "KVM_REG_ARM_PSCI_VERSION": 0x10001,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1": 1,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2": 1,
    "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3": 1,
    "KVM_REG_ARM_STD_BMAP": 0x1,
    "KVM_REG_ARM_STD_HYP_BMAP": 0x1,
    "KVM_REG_ARM_VENDOR_HYP_BMAP": 0x3,
    "KVM_REG_ARM_VENDOR_HYP_BMAP_2": 0x0,
}
ICC_CTLR_EL1 = 0x94400  # A3V, IDbits 16, PRIbits 5 (4): a typical GIC-600
ISAR0_MASK = 0x0FFFFFF0FFFFFFF0
ALL_CAPABILITIES = {
    abi.KVM_CAP_ARM_PSCI_0_2: 1,
    abi.KVM_CAP_ARM_PMU_V3: 1,
    abi.KVM_CAP_ARM_SVE: 1,
    abi.KVM_CAP_ARM_PTRAUTH_ADDRESS: 1,
    abi.KVM_CAP_ARM_PTRAUTH_GENERIC: 1,
    abi.KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES: 1,
    abi.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS: 1,
}


class FakeKvm:
    """/dev/kvm of an arm64 host, from tables; records fds and the vCPU's features."""

    def __init__(self) -> None:
        self.present = True
        self.capabilities = dict(ALL_CAPABILITIES)
        self.registers = {
            **ID_REGISTERS,
            **{CATALOGUE[name].one_reg_id: value for name, value in FIRMWARE.items()},
        }
        isar0 = CATALOGUE["ID_AA64ISAR0_EL1"].kvm_mask_index
        assert isar0 is not None  # a feature register: KVM has a mask for it
        self.masks = {isar0: ISAR0_MASK}
        self.vgic = True
        self.gic_registers = {abi.vgic_sysreg_attr(_encoding("ICC_CTLR_EL1")): ICC_CTLR_EL1}
        self.failures: dict[int, int] = {}  # request -> errno
        self.open_fds: dict[int, str] = {}
        self.vcpu_features: int | None = None
        self.requests: list[int] = []
        self._next_fd = 100
        self._vgic_ready = False

    def open(self, path: str) -> int:
        assert path == KVM_DEVICE
        if not self.present:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return self._new("system")

    def close(self, fd: int) -> None:
        del self.open_fds[fd]  # KeyError on a double close

    def ioctl(self, fd: int, request: int, argument: int | bytearray) -> int:
        kind = self.open_fds[fd]
        self.requests.append(request)
        if request in self.failures:
            raise OSError(self.failures[request], os.strerror(self.failures[request]))
        handler = self._handlers().get((kind, request))
        if handler is None:
            raise OSError(errno.ENOTTY, os.strerror(errno.ENOTTY))
        return handler(argument)

    def _handlers(self) -> Mapping[tuple[str, int], Callable[[Any], int]]:
        return {
            ("system", abi.KVM_GET_API_VERSION): lambda _: abi.KVM_API_VERSION,
            ("system", abi.KVM_CREATE_VM): lambda _: self._new("vm"),
            ("vm", abi.KVM_CHECK_EXTENSION): lambda cap: self.capabilities.get(cap, 0),
            ("vm", abi.KVM_ARM_GET_REG_WRITABLE_MASKS): self._writable_masks,
            ("vm", abi.KVM_CREATE_VCPU): lambda _: self._new("vcpu"),
            ("vm", abi.KVM_ARM_PREFERRED_TARGET): self._preferred_target,
            ("vm", abi.KVM_CREATE_DEVICE): self._create_device,
            ("vcpu", abi.KVM_ARM_VCPU_INIT): self._vcpu_init,
            ("vcpu", abi.KVM_GET_ONE_REG): self._get_one_reg,
            ("device", abi.KVM_SET_DEVICE_ATTR): self._set_device_attr,
            ("device", abi.KVM_GET_DEVICE_ATTR): self._get_device_attr,
        }

    def _new(self, kind: str) -> int:
        self._next_fd += 1
        self.open_fds[self._next_fd] = kind
        return self._next_fd

    def _writable_masks(self, argument: bytearray) -> int:
        address, mask_range, *reserved = abi.REG_MASK_RANGE.unpack(argument)
        if mask_range != 0 or any(reserved):
            raise OSError(errno.EINVAL, "bad range")
        masks = (ctypes.c_uint64 * abi.WRITABLE_MASKS_COUNT).from_address(address)
        for index, mask in self.masks.items():
            masks[index] = mask
        return 0

    def _preferred_target(self, argument: bytearray) -> int:
        argument[:] = abi.vcpu_init(5, ())  # KVM_ARM_TARGET_GENERIC_V8
        return 0

    def _vcpu_init(self, argument: bytearray) -> int:
        target, features, *_ = abi.VCPU_INIT.unpack(argument)
        assert target == 5
        self.vcpu_features = features
        return 0

    def _get_one_reg(self, argument: bytearray) -> int:
        if self.vcpu_features is None:
            raise OSError(errno.ENOEXEC, "vCPU not initialised")
        register_id, address = abi.ONE_REG.unpack(argument)
        if register_id not in self.registers:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        ctypes.c_uint64.from_address(address).value = self.registers[register_id]
        return 0

    def _create_device(self, argument: bytearray) -> int:
        device_type, _, _ = abi.CREATE_DEVICE.unpack(argument)
        if not self.vgic or device_type != abi.KVM_DEV_TYPE_ARM_VGIC_V3:
            raise OSError(errno.ENODEV, os.strerror(errno.ENODEV))
        argument[:] = abi.CREATE_DEVICE.pack(device_type, self._new("device"), 0)
        return 0

    def _set_device_attr(self, argument: bytearray) -> int:
        _, group, attribute, _ = abi.DEVICE_ATTR.unpack(argument)
        assert (group, attribute) == (abi.KVM_DEV_ARM_VGIC_GRP_CTRL, abi.KVM_DEV_ARM_VGIC_CTRL_INIT)
        self._vgic_ready = True
        return 0

    def _get_device_attr(self, argument: bytearray) -> int:
        _, group, attribute, address = abi.DEVICE_ATTR.unpack(argument)
        if not self._vgic_ready:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        if group != abi.KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS or attribute not in self.gic_registers:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        ctypes.c_uint64.from_address(address).value = self.gic_registers[attribute]
        return 0


def _encoding(name: str):  # type: ignore[no-untyped-def]
    encoding = CATALOGUE[name].encoding
    assert encoding is not None
    return encoding
