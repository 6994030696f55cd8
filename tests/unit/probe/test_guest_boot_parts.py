"""The pure parts of guest-view's VM: its boot program, the ABI numbers it adds, its registers."""

from __future__ import annotations

from qemu_errata.core.catalogue import Encoding, load_catalogue
from qemu_errata.core.implementations import TargetImplementations
from qemu_errata.core.pool import PoolModel
from qemu_errata.probe import a64
from qemu_errata.probe import kvm_abi as abi
from qemu_errata.probe.guest_boot import guest_registers
from qemu_errata.probe.mmio_program import build_boot_program


def words_of(code: bytes) -> list[int]:
    return [int.from_bytes(code[i : i + 4], "little") for i in range(0, len(code), 4)]


def test_the_boot_program_reads_then_enters_the_kernel_with_the_device_tree_in_x0() -> None:
    program = build_boot_program([Encoding(3, 0, 0, 0, 0)], 0x40000000, 0x40200000, 0x4FE00000)
    words = words_of(program.code)
    boot = words.index(0x580000C0)  # ldr x0, .+24
    # The store ending the reads, then (one word too few for the alignment) a nop.
    assert words[boot - 2 : boot] == [a64.str_unsigned_offset(0, 1, 0), a64.NOP]
    # movz x1-x3, #0; ldr x4, .+16; br x4
    assert words[boot + 1 : boot + 6] == [
        0xD2800001,
        0xD2800002,
        0xD2800003,
        0x58000084,
        0xD61F0080,
    ]
    assert (boot * 4) % 8 == 0  # 8-byte aligned literals: with the MMU off a load must be
    literals = program.code[(boot + 6) * 4 :]
    assert literals == (0x4FE00000).to_bytes(8, "little") + (0x40200000).to_bytes(8, "little")
    assert program.entry_address == 0x40000000 + a64.VECTOR_TABLE_SIZE


def test_the_abi_numbers_guest_view_adds() -> None:
    assert abi.KVM_ENABLE_CAP == 0x4068AEA3
    assert abi.KVM_REGISTER_COALESCED_MMIO == 0x4010AE67
    assert abi.SMCCC_FILTER.size == 24
    assert abi.smccc_filter(0xC6000040, 2, 2)[:9] == bytes.fromhex("400000c6020000000" + "2")
    assert abi.core_x_register(0) == 0x6030000000100000
    assert abi.core_x_register(3) == 0x6030000000100006


def test_the_guest_reads_the_identity_registers_then_every_id_register_of_the_model() -> None:
    catalogue = load_catalogue()
    model = PoolModel(
        id_registers={"ID_AA64PFR0_EL1": 0x11, "CTR_EL0": 0x1, "ID_AA64ISAR0_EL1": 0},
        target_implementations=TargetImplementations([]),
    )
    names = [register.name for register in guest_registers(model, catalogue)]
    assert names == [
        "MIDR_EL1",
        "REVIDR_EL1",
        "AIDR_EL1",
        "ID_AA64PFR0_EL1",
        "CTR_EL0",
        "ID_AA64ISAR0_EL1",
    ]
