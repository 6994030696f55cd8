"""The arm64 KVM ioctl interface of the kvm probe and kvm-validate: numbers, structs (no I/O).

Values from the Linux UAPI headers (include/uapi/linux/kvm.h,
arch/arm64/include/uapi/asm/kvm.h); unit tests pin each one. Register ids
are not here: they come from the catalogue (``Register.one_reg_id``).
Structs are packed in native byte order, as the kernel reads them.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING

from qemu_errata.core.catalogue import Encoding

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

KVMIO = 0xAE
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2


def _ioc(direction: int, number: int, size: int) -> int:
    """Linux's _IOC(): direction [31:30], size [29:16], type [15:8], number [7:0]."""
    return direction << 30 | size << 16 | KVMIO << 8 | number


ONE_REG = struct.Struct("=QQ")  # struct kvm_one_reg { u64 id; u64 addr; }
VCPU_INIT = struct.Struct("=I7I")  # struct kvm_vcpu_init { u32 target; u32 features[7]; }
# struct reg_mask_range { u64 addr; u32 range; u32 reserved[13]; }
REG_MASK_RANGE = struct.Struct("=QI13I")
CREATE_DEVICE = struct.Struct("=III")  # struct kvm_create_device { u32 type, fd, flags; }
DEVICE_ATTR = struct.Struct("=IIQQ")  # struct kvm_device_attr { u32 flags, group; u64 attr, addr; }
# struct kvm_userspace_memory_region { u32 slot, flags; u64 guest_phys_addr, memory_size,
# userspace_addr; }
USER_MEMORY_REGION = struct.Struct("=IIQQQ")
# struct kvm_enable_cap { u32 cap, flags; u64 args[4]; u8 pad[64]; }
ENABLE_CAP = struct.Struct("=II4Q64x")
# struct kvm_coalesced_mmio_zone { u64 addr; u32 size; u32 pad; }
COALESCED_MMIO_ZONE = struct.Struct("=QII")
# struct kvm_coalesced_mmio_ring { u32 first, last; struct kvm_coalesced_mmio entries[]; },
# at the page the capability names in the vCPU's mapping; each entry
# { u64 phys_addr; u32 len; u32 pad; u8 data[8]; }. KVM writes last, userspace first.
COALESCED_RING_HEADER = struct.Struct("=II")
COALESCED_ENTRY = struct.Struct("=QII8s")
# struct kvm_smccc_filter { u32 base, nr_functions; u8 action; u8 pad[15]; }
SMCCC_FILTER = struct.Struct("=IIB15x")

KVM_API_VERSION = 12
KVM_GET_API_VERSION = _ioc(_IOC_NONE, 0x00, 0)
KVM_CREATE_VM = _ioc(_IOC_NONE, 0x01, 0)
KVM_CHECK_EXTENSION = _ioc(_IOC_NONE, 0x03, 0)
KVM_GET_VCPU_MMAP_SIZE = _ioc(_IOC_NONE, 0x04, 0)
KVM_CREATE_VCPU = _ioc(_IOC_NONE, 0x41, 0)
KVM_SET_USER_MEMORY_REGION = _ioc(_IOC_WRITE, 0x46, USER_MEMORY_REGION.size)
KVM_REGISTER_COALESCED_MMIO = _ioc(_IOC_WRITE, 0x67, COALESCED_MMIO_ZONE.size)
KVM_ENABLE_CAP = _ioc(_IOC_WRITE, 0xA3, ENABLE_CAP.size)
KVM_RUN = _ioc(_IOC_NONE, 0x80, 0)
KVM_GET_ONE_REG = _ioc(_IOC_WRITE, 0xAB, ONE_REG.size)
KVM_SET_ONE_REG = _ioc(_IOC_WRITE, 0xAC, ONE_REG.size)
KVM_ARM_VCPU_INIT = _ioc(_IOC_WRITE, 0xAE, VCPU_INIT.size)
KVM_ARM_PREFERRED_TARGET = _ioc(_IOC_READ, 0xAF, VCPU_INIT.size)
KVM_ARM_GET_REG_WRITABLE_MASKS = _ioc(_IOC_READ, 0xB6, REG_MASK_RANGE.size)
KVM_ARM_VCPU_FINALIZE = _ioc(_IOC_WRITE, 0xC2, 4)  # argument: a pointer to the int feature
KVM_CREATE_DEVICE = _ioc(_IOC_READ | _IOC_WRITE, 0xE0, CREATE_DEVICE.size)
KVM_SET_DEVICE_ATTR = _ioc(_IOC_WRITE, 0xE1, DEVICE_ATTR.size)
KVM_GET_DEVICE_ATTR = _ioc(_IOC_WRITE, 0xE2, DEVICE_ATTR.size)

# KVM_CHECK_EXTENSION capabilities
KVM_CAP_COALESCED_MMIO = 15  # its value: the page of the vCPU mapping holding the ring
KVM_CAP_READONLY_MEM = 81
KVM_CAP_ARM_PSCI_0_2 = 102
KVM_CAP_ARM_PMU_V3 = 126
KVM_CAP_ARM_SVE = 170
KVM_CAP_ARM_PTRAUTH_ADDRESS = 171
KVM_CAP_ARM_PTRAUTH_GENERIC = 172
KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES = 230
KVM_CAP_ARM_WRITABLE_IMP_ID_REGS = 239

# struct kvm_vcpu_init features[0] bits
KVM_ARM_VCPU_PSCI_0_2 = 2
KVM_ARM_VCPU_PMU_V3 = 3
KVM_ARM_VCPU_SVE = 4
KVM_ARM_VCPU_PTRAUTH_ADDRESS = 5
KVM_ARM_VCPU_PTRAUTH_GENERIC = 6

# The feature ID register range: bit 0 of KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES,
# range 0 of KVM_ARM_GET_REG_WRITABLE_MASKS, an array of this many u64 masks.
FEATURE_ID_RANGE = 0
WRITABLE_MASKS_COUNT = 192

# struct kvm_userspace_memory_region flags: the guest reads the slot, its writes exit as MMIO.
KVM_MEM_READONLY = 1 << 1

# The in-kernel GICv3 device
KVM_DEV_TYPE_ARM_VGIC_V3 = 7
KVM_DEV_ARM_VGIC_GRP_CTRL = 4
KVM_DEV_ARM_VGIC_CTRL_INIT = 0
KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS = 6
_VGIC_V3_MPIDR_SHIFT = 32
# Where a vGICv3 appears in guest physical memory (KVM_RUN refuses a VM without them).
KVM_DEV_ARM_VGIC_GRP_ADDR = 0
KVM_VGIC_V3_ADDR_TYPE_DIST = 2
KVM_VGIC_V3_ADDR_TYPE_REDIST = 3

# The vCPU's PMUv3 (KVM_SET_DEVICE_ATTR on the vCPU): its interrupt, then init, before KVM_RUN.
KVM_ARM_VCPU_PMU_V3_CTRL = 0
KVM_ARM_VCPU_PMU_V3_IRQ = 0
KVM_ARM_VCPU_PMU_V3_INIT = 1

# The VM's SMCCC filter (KVM_SET_DEVICE_ATTR on the VM fd, Linux >= 6.4): hypercalls in a
# range forwarded to userspace as KVM_EXIT_HYPERCALL.
KVM_ARM_VM_SMCCC_CTRL = 0
KVM_ARM_VM_SMCCC_FILTER = 0
KVM_SMCCC_FILTER_FWD_TO_USER = 2

# Core registers: KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | the u32 index of
# the field in struct kvm_regs; pc follows regs[31] and sp in struct user_pt_regs.
KVM_REG_ARM_CORE_PC = 0x6000000000000000 | 0x0030000000000000 | 0x0010 << 16 | (32 * 8) // 4

# struct kvm_run, as mapped from the vCPU fd: exit_reason at byte 8, the exit's
# details (a union) from byte 32; for KVM_EXIT_MMIO { u64 phys_addr; u8 data[8];
# u32 len; u8 is_write; }.
RUN_EXIT_REASON_OFFSET = 8
RUN_EXIT_DETAILS_OFFSET = 32
RUN_EXIT_REASON = struct.Struct("=I")
RUN_MMIO = struct.Struct("=Q8sIB")
RUN_MMIO_DATA_OFFSET = RUN_EXIT_DETAILS_OFFSET + 8
# KVM_EXIT_HYPERCALL { u64 nr; u64 args[6]; u64 ret; u64 flags; }: nr is the SMCCC function id;
# arm64 passes the arguments in x0-x17 (KVM_GET_ONE_REG), results too (KVM_SET_ONE_REG).
RUN_HYPERCALL_NR = struct.Struct("=Q")
# KVM_EXIT_SYSTEM_EVENT { u32 type; ... }: the guest's PSCI SYSTEM_OFF, SYSTEM_RESET, ...
RUN_SYSTEM_EVENT_TYPE = struct.Struct("=I")
KVM_EXIT_HYPERCALL = 3
KVM_EXIT_MMIO = 6
KVM_EXIT_SYSTEM_EVENT = 24
SYSTEM_EVENT_NAMES = {1: "SYSTEM_OFF", 2: "SYSTEM_RESET", 3: "a crash"}


def core_x_register(number: int) -> int:
    """The ONE_REG id of general-purpose register x<number> (struct user_pt_regs regs[])."""
    return 0x6000000000000000 | 0x0030000000000000 | 0x0010 << 16 | (number * 8) // 4


def enable_cap(capability: int) -> bytearray:
    return bytearray(ENABLE_CAP.pack(capability, 0, 0, 0, 0, 0))


def coalesced_mmio_zone(address: int, size: int) -> bytearray:
    return bytearray(COALESCED_MMIO_ZONE.pack(address, size, 0))


def take_coalesced(run: mmap.mmap, ring: int, capacity: int) -> list[tuple[int, bytes]]:
    """The writes waiting in the coalesced MMIO ring at byte ``ring`` of a vCPU mapping, as
    (address, data), oldest first; marks them taken."""
    first, last = COALESCED_RING_HEADER.unpack_from(run, ring)
    writes = []
    while first != last:
        address, length, _, data = COALESCED_ENTRY.unpack_from(
            run, ring + COALESCED_RING_HEADER.size + first * COALESCED_ENTRY.size
        )
        writes.append((address, data[: min(length, len(data))]))
        first = (first + 1) % capacity
    struct.pack_into("=I", run, ring, first)
    return writes


def coalesced_capacity(page_size: int) -> int:
    """KVM_COALESCED_MMIO_MAX: the entries that fit in one page after the ring's header."""
    return (page_size - COALESCED_RING_HEADER.size) // COALESCED_ENTRY.size


def smccc_filter(base: int, count: int, action: int) -> bytearray:
    return bytearray(SMCCC_FILTER.pack(base, count, action))


def hypercall_function(run: ReadableBuffer) -> int:
    """The SMCCC function id of a KVM_EXIT_HYPERCALL."""
    return int(RUN_HYPERCALL_NR.unpack_from(run, RUN_EXIT_DETAILS_OFFSET)[0])


def system_event_type(run: ReadableBuffer) -> int:
    return int(RUN_SYSTEM_EVENT_TYPE.unpack_from(run, RUN_EXIT_DETAILS_OFFSET)[0])


def one_reg(register_id: int, address: int) -> bytearray:
    return bytearray(ONE_REG.pack(register_id, address))


def vcpu_init(target: int, feature_bits: Iterable[int]) -> bytearray:
    words = [0] * 7
    for bit in feature_bits:
        words[bit // 32] |= 1 << bit % 32
    return bytearray(VCPU_INIT.pack(target, *words))


def user_memory_region(
    slot: int, guest_address: int, size: int, address: int, flags: int = 0
) -> bytearray:
    return bytearray(USER_MEMORY_REGION.pack(slot, flags, guest_address, size, address))


def exit_reason(run: ReadableBuffer) -> int:
    """The KVM_EXIT_* reason of a struct kvm_run."""
    return int(RUN_EXIT_REASON.unpack_from(run, RUN_EXIT_REASON_OFFSET)[0])


def mmio_exit(run: ReadableBuffer) -> tuple[int, bytes, bool]:
    """A KVM_EXIT_MMIO's (guest physical address, the len bytes of data, is_write)."""
    address, data, length, is_write = RUN_MMIO.unpack_from(run, RUN_EXIT_DETAILS_OFFSET)
    return address, data[: min(length, len(data))], bool(is_write)


def vcpu_init_target(data: bytes | bytearray) -> int:
    """The target of a struct kvm_vcpu_init (KVM_ARM_PREFERRED_TARGET's answer)."""
    return int(VCPU_INIT.unpack(data)[0])


def reg_mask_range(address: int) -> bytearray:
    """Ask for the feature ID range's masks, written to the u64 array at ``address``."""
    return bytearray(REG_MASK_RANGE.pack(address, FEATURE_ID_RANGE, *[0] * 13))


def create_device(device_type: int) -> bytearray:
    return bytearray(CREATE_DEVICE.pack(device_type, 0, 0))


def created_device_fd(data: bytes | bytearray) -> int:
    return int(CREATE_DEVICE.unpack(data)[1])


def device_attr(group: int, attribute: int, address: int) -> bytearray:
    return bytearray(DEVICE_ATTR.pack(0, group, attribute, address))


def vgic_sysreg_attr(encoding: Encoding, mpidr: int = 0) -> int:
    """The attribute naming a GIC CPU-interface register of the vCPU with ``mpidr``
    (KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS): affinity in [63:32], the encoding below."""
    return mpidr << _VGIC_V3_MPIDR_SHIFT | encoding.sysreg_index
