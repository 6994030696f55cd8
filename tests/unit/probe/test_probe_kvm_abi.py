"""Every ioctl number, struct layout and register id the kvm probe uses, pinned.

Numbers from the Linux UAPI headers (include/uapi/linux/kvm.h,
arch/arm64/include/uapi/asm/kvm.h), as Linux 6.12 defines them.
"""

from __future__ import annotations

import pytest

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.registers_table import ID_REGISTER_KINDS, Kind
from qemu_errata.probe import kvm_abi as abi


def test_ioctl_numbers_of_the_facts_file() -> None:
    assert abi.KVM_ARM_GET_REG_WRITABLE_MASKS == 0x8040AEB6
    assert abi.KVM_GET_ONE_REG == 0x4010AEAB
    assert abi.KVM_SET_ONE_REG == 0x4010AEAC
    assert abi.KVM_CREATE_VCPU == 0xAE41
    assert abi.KVM_ARM_PREFERRED_TARGET == 0x8020AEAF
    assert abi.KVM_ARM_VCPU_INIT == 0x4020AEAE


def test_ioctl_numbers_of_the_uapi_headers() -> None:
    assert abi.KVM_GET_API_VERSION == 0xAE00
    assert abi.KVM_CREATE_VM == 0xAE01
    assert abi.KVM_CHECK_EXTENSION == 0xAE03
    assert abi.KVM_CREATE_DEVICE == 0xC00CAEE0
    assert abi.KVM_SET_DEVICE_ATTR == 0x4018AEE1
    assert abi.KVM_GET_DEVICE_ATTR == 0x4018AEE2


def test_capabilities_and_feature_bits() -> None:
    assert abi.KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES == 230
    assert abi.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS == 239
    assert abi.KVM_CAP_ARM_PSCI_0_2 == 102
    assert abi.KVM_CAP_ARM_PMU_V3 == 126
    assert abi.KVM_CAP_ARM_SVE == 170
    assert (abi.KVM_CAP_ARM_PTRAUTH_ADDRESS, abi.KVM_CAP_ARM_PTRAUTH_GENERIC) == (171, 172)
    assert (
        abi.KVM_ARM_VCPU_PSCI_0_2,
        abi.KVM_ARM_VCPU_PMU_V3,
        abi.KVM_ARM_VCPU_SVE,
        abi.KVM_ARM_VCPU_PTRAUTH_ADDRESS,
        abi.KVM_ARM_VCPU_PTRAUTH_GENERIC,
    ) == (2, 3, 4, 5, 6)
    assert abi.KVM_DEV_TYPE_ARM_VGIC_V3 == 7
    assert abi.KVM_DEV_ARM_VGIC_GRP_CTRL == 4
    assert abi.KVM_DEV_ARM_VGIC_CTRL_INIT == 0
    assert abi.KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS == 6


def test_struct_layouts() -> None:
    assert abi.REG_MASK_RANGE.size == 64
    assert abi.WRITABLE_MASKS_COUNT == 192
    assert abi.ONE_REG.size == 16
    assert abi.VCPU_INIT.size == 32
    assert abi.CREATE_DEVICE.size == 12
    assert abi.DEVICE_ATTR.size == 24


def test_packed_requests() -> None:
    one_reg = abi.one_reg(0x603000000013C000, 0x7F0012345678)
    assert one_reg == bytes.fromhex("00c013000000306078563412007f0000")
    mask_range = abi.reg_mask_range(0x1000)
    assert mask_range[:8] == (0x1000).to_bytes(8, "little")
    assert mask_range[8:] == bytes(56)  # range 0 (feature IDs), reserved zero
    init = abi.vcpu_init(5, [abi.KVM_ARM_VCPU_PSCI_0_2, abi.KVM_ARM_VCPU_PMU_V3])
    assert init == (5).to_bytes(4, "little") + (0b1100).to_bytes(4, "little") + bytes(24)
    assert abi.vcpu_init_target(init) == 5
    device = abi.create_device(abi.KVM_DEV_TYPE_ARM_VGIC_V3)
    assert device == bytes.fromhex("070000000000000000000000")
    device[4:8] = (42).to_bytes(4, "little")  # the kernel writes the new fd there
    assert abi.created_device_fd(device) == 42
    attr = abi.device_attr(6, 0xC664, 0x2000)
    assert attr == bytes.fromhex("0000000006000000") + (0xC664).to_bytes(8, "little") + (
        0x2000
    ).to_bytes(8, "little")


def test_icc_ctlr_el1_attribute_of_vcpu_0() -> None:
    icc_ctlr = load_catalogue()["ICC_CTLR_EL1"]
    assert icc_ctlr.kind is Kind.GIC
    assert icc_ctlr.encoding is not None
    assert abi.vgic_sysreg_attr(icc_ctlr.encoding) == 0xC664  # S3_0_C12_C12_4
    assert abi.vgic_sysreg_attr(icc_ctlr.encoding, mpidr=0x0100) == 0x0100_0000_C664


@pytest.mark.parametrize(
    ("name", "one_reg_id"),
    [
        ("KVM_REG_ARM_PSCI_VERSION", 0x6030000000140000),
        ("KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1", 0x6030000000140001),
        ("KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2", 0x6030000000140002),
        ("KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_3", 0x6030000000140003),
        ("KVM_REG_ARM_STD_BMAP", 0x6030000000160000),
        ("KVM_REG_ARM_STD_HYP_BMAP", 0x6030000000160001),
        ("KVM_REG_ARM_VENDOR_HYP_BMAP", 0x6030000000160002),
        ("KVM_REG_ARM_VENDOR_HYP_BMAP_2", 0x6030000000160003),
    ],
)
def test_firmware_register_ids(name: str, one_reg_id: int) -> None:
    register = load_catalogue()[name]
    assert register.kind is Kind.FIRMWARE
    assert register.one_reg_id == one_reg_id


def test_every_id_register_the_probe_reads_is_in_kvms_writable_mask_array() -> None:
    registers = load_catalogue().of_kind(*ID_REGISTER_KINDS)
    assert len(registers) > 40
    for register in registers:
        assert register.kvm_mask_index is not None, register.name
        assert 0 <= register.kvm_mask_index < abi.WRITABLE_MASKS_COUNT, register.name
