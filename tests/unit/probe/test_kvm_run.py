"""``kvm-validate --run`` without a kernel: the guest program, its report, the run loop.

``GuestKvm`` extends the kvm probe's stand-in kernel with what a guest run
needs (SET_ONE_REG, guest memory, KVM_RUN) and executes the generated
program itself, word by word, for the few instructions it uses: so the
program, the struct kvm_run parsing and the report are tested together.
Instruction words are from LLVM's assembler (llvm-mc -triple=aarch64
-show-encoding); ioctl numbers, register ids and struct kvm_run offsets from
the Linux 6.12 UAPI headers. The real-kernel run is in nested/test_nested_kvm.py.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import re
import struct
import time
from collections.abc import Mapping
from typing import Any

import pytest
from support.fake_kvm import CATALOGUE, FakeKvm

from qemu_errata.core.catalogue import Encoding
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import baseline
from qemu_errata.probe import a64, kvm_run
from qemu_errata.probe import kvm_abi as abi
from qemu_errata.probe.mmio_program import (
    DONE,
    FAULT_ADDRESS,
    FIRST_REGISTER,
    MMIO_BASE,
    RAM_BASE,
    SYNDROME,
    GuestError,
    GuestRead,
    GuestReport,
    build_program,
)
from qemu_errata.probe.validate import validate_models
from qemu_errata.reports.kvm_validation import model_json

ID_AA64PFR1_EL1 = Encoding(3, 0, 0, 4, 1)
ID_AA64MMFR0_EL1 = Encoding(3, 0, 0, 7, 0)
GMID_EL1 = Encoding(3, 1, 0, 0, 4)  # UNDEFINED without MTE
UNDEFINED_SYNDROME = 0x2000000  # EC 0 (unknown reason), IL 1


def test_ioctl_numbers_register_id_and_struct_layouts() -> None:
    assert abi.KVM_RUN == 0xAE80
    assert abi.KVM_GET_VCPU_MMAP_SIZE == 0xAE04
    assert abi.KVM_SET_USER_MEMORY_REGION == 0x4020AE46
    assert abi.KVM_ARM_VCPU_FINALIZE == 0x4004AEC2
    assert abi.USER_MEMORY_REGION.size == 32
    # KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | offsetof(kvm_regs, regs.pc) / 4
    assert abi.KVM_REG_ARM_CORE_PC == 0x6030000000100040
    assert (abi.RUN_EXIT_REASON_OFFSET, abi.RUN_EXIT_DETAILS_OFFSET) == (8, 32)
    assert abi.RUN_MMIO.format == "=Q8sIB"  # phys_addr, data[8], len, is_write
    assert abi.KVM_EXIT_MMIO == 6
    assert (
        abi.KVM_DEV_ARM_VGIC_GRP_ADDR,
        abi.KVM_VGIC_V3_ADDR_TYPE_DIST,
        abi.KVM_VGIC_V3_ADDR_TYPE_REDIST,
    ) == (0, 2, 3)
    assert (
        abi.KVM_ARM_VCPU_PMU_V3_CTRL,
        abi.KVM_ARM_VCPU_PMU_V3_IRQ,
        abi.KVM_ARM_VCPU_PMU_V3_INIT,
    ) == (0, 0, 1)


def test_packed_memory_region_and_parsed_mmio_exit() -> None:
    region = abi.user_memory_region(0, 0x10000, 0x10000, 0x7F0000001000)
    assert region == bytes(8) + (0x10000).to_bytes(8, "little") * 2 + (0x7F0000001000).to_bytes(
        8, "little"
    )
    run = bytearray(64)
    run[8:12] = (6).to_bytes(4, "little")
    run[32:40] = (0x8018).to_bytes(8, "little")
    run[40:48] = (0x1122).to_bytes(8, "little")
    run[48:52] = (8).to_bytes(4, "little")
    run[52] = 1
    assert abi.exit_reason(run) == abi.KVM_EXIT_MMIO
    assert abi.mmio_exit(run) == (0x8018, (0x1122).to_bytes(8, "little"), True)


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        (a64.str_unsigned_offset(0, 1, 8), 0xF9000420),
        (a64.str_unsigned_offset(0, 1, 32760), 0xF93FFC20),
        (a64.mrs(0, a64.ESR_EL1), 0xD5385200),
        (a64.mrs(0, GMID_EL1), 0xD5390080),
        (a64.movz(1, 0x8000), 0xD2900001),
    ],
)
def test_instruction_words(word: int, expected: int) -> None:
    assert word == expected


def test_store_offsets_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        a64.str_unsigned_offset(0, 1, 12)
    with pytest.raises(ValueError, match="multiple of 8"):
        a64.str_unsigned_offset(0, 1, 32768)


def _words(code: bytes, start: int, count: int) -> list[int]:
    return [int.from_bytes(code[i : i + 4], "little") for i in range(start, start + 4 * count, 4)]


def test_program_layout() -> None:
    program = build_program([ID_AA64PFR1_EL1, ID_AA64MMFR0_EL1])
    entry = program.entry_address - RAM_BASE
    assert entry == 0x800  # after the 2 KiB vector table, which starts RAM
    assert _words(program.code, entry, 10) == [
        a64.movz(1, MMIO_BASE),
        a64.adr(2, -0x804),  # the vector table, from the adr's own address
        a64.msr(a64.VBAR_EL1, 2),
        a64.ISB,
        a64.mrs(0, ID_AA64PFR1_EL1),
        a64.str_unsigned_offset(0, 1, FIRST_REGISTER),
        a64.mrs(0, ID_AA64MMFR0_EL1),
        a64.str_unsigned_offset(0, 1, FIRST_REGISTER + 8),
        a64.str_unsigned_offset(0, 1, DONE),
        a64.branch(0),
    ]
    for vector in (0x000, 0x200):  # synchronous, current EL, SP_EL0 and SP_ELx
        assert _words(program.code, vector, 7) == [
            a64.mrs(0, a64.ESR_EL1),
            a64.str_unsigned_offset(0, 1, SYNDROME),
            a64.mrs(0, a64.ELR_EL1),
            a64.str_unsigned_offset(0, 1, FAULT_ADDRESS),
            a64.add_immediate(0, 0, 8),
            a64.msr(a64.ELR_EL1, 0),
            a64.ERET,
        ]
    assert len(program.code) == entry + 4 * 10
    assert program.max_stores == 5


def test_report_of_values_and_an_undefined_register() -> None:
    program = build_program([ID_AA64PFR1_EL1, GMID_EL1, ID_AA64MMFR0_EL1])
    report = GuestReport(program)
    report.store(MMIO_BASE + FIRST_REGISTER, 0x10)
    report.store(MMIO_BASE + SYNDROME, UNDEFINED_SYNDROME)
    report.store(MMIO_BASE + FAULT_ADDRESS, program.entry_address + 16 + 8)  # second MRS
    report.store(MMIO_BASE + FIRST_REGISTER + 16, 0x101122)
    assert not report.done
    report.store(MMIO_BASE + DONE, 0)
    assert report.done
    assert report.reads == {
        0: GuestRead(0x10),
        1: GuestRead(None, UNDEFINED_SYNDROME),
        2: GuestRead(0x101122),
    }
    assert report.reads[1].describe() == "UNDEFINED (ESR_EL1 0x2000000)"


@pytest.mark.parametrize(
    ("stores", "error"),
    [
        ([(MMIO_BASE + FIRST_REGISTER + 8, 1)], "outside the program's MMIO window"),
        ([(MMIO_BASE + DONE, 0), (MMIO_BASE + FIRST_REGISTER, 1)], "after the end"),
        (
            [(MMIO_BASE + SYNDROME, 0x96000045), (MMIO_BASE + FAULT_ADDRESS, RAM_BASE + 0x804)],
            r"exception at 0x10804 \(ESR_EL1 0x96000045\), not at an MRS",
        ),
    ],
)
def test_report_refuses_stores_the_program_does_not_make(
    stores: list[tuple[int, int]], error: str
) -> None:
    report = GuestReport(build_program([ID_AA64PFR1_EL1]))
    with pytest.raises(GuestError, match=error):
        for address, value in stores:
            report.store(address, value)


class GuestKvm(FakeKvm):
    """FakeKvm that takes register writes, guest memory and runs the guest program."""

    def __init__(self) -> None:
        super().__init__()
        self.undefined = {GMID_EL1}
        self.sanitised: dict[int, int] = {}  # one_reg_id -> what the guest reads instead
        self.exit_reason = abi.KVM_EXIT_MMIO
        self.run_delay = 0.0
        self.attributes: list[tuple[str, int, int]] = []
        self.finalized: list[int] = []
        self.mappings: list[mmap.mmap] = []
        self.memory: tuple[int, int, int] | None = None  # guest address, size, host address
        self.pc = 0
        self.x = [0] * 31
        self.system = {"VBAR_EL1": 0, "ELR_EL1": 0, "ESR_EL1": 0}
        self._run: mmap.mmap | None = None

    def map(self, fd: int, size: int) -> mmap.mmap:
        mapping = mmap.mmap(-1, size)
        if fd >= 0:
            assert self.open_fds[fd] == "vcpu"
            self._run = mapping
        self.mappings.append(mapping)
        return mapping

    def _handlers(self) -> Mapping[tuple[str, int], Any]:
        return {
            **super()._handlers(),
            ("system", abi.KVM_GET_VCPU_MMAP_SIZE): lambda _: 3 * 4096,
            ("vm", abi.KVM_SET_USER_MEMORY_REGION): self._set_memory,
            ("vcpu", abi.KVM_SET_ONE_REG): self._set_one_reg,
            ("vcpu", abi.KVM_SET_DEVICE_ATTR): lambda a: self._attribute("vcpu", a),
            ("vcpu", abi.KVM_ARM_VCPU_FINALIZE): self._finalize,
            ("vcpu", abi.KVM_RUN): self._kvm_run,
            ("device", abi.KVM_SET_DEVICE_ATTR): lambda a: self._attribute("device", a),
        }

    def _attribute(self, kind: str, argument: bytearray) -> int:
        _, group, attribute, address = abi.DEVICE_ATTR.unpack(argument)
        if (kind, group) == ("device", abi.KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS):
            self.gic_registers[attribute] = ctypes.c_uint64.from_address(address).value
            return 0
        self.attributes.append((kind, group, attribute))
        return self._set_device_attr(argument) if (kind, group) == ("device", 4) else 0

    def _finalize(self, argument: bytearray) -> int:
        self.finalized.append(struct.unpack("=i", argument)[0])
        return 0

    def _set_memory(self, argument: bytearray) -> int:
        slot, flags, guest, size, address = abi.USER_MEMORY_REGION.unpack(argument)
        assert (slot, flags) == (0, 0)
        self.memory = guest, size, address
        return 0

    def _set_one_reg(self, argument: bytearray) -> int:
        register_id, address = abi.ONE_REG.unpack(argument)
        value = ctypes.c_uint64.from_address(address).value
        if register_id == abi.KVM_REG_ARM_CORE_PC:
            self.pc = value
        elif register_id in self.registers:
            self.registers[register_id] = value
        else:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        return 0

    def _kvm_run(self, _: int) -> int:
        time.sleep(self.run_delay)
        assert self._run is not None
        self._run[8:12] = self.exit_reason.to_bytes(4, "little")
        while True:  # execute until a store outside guest RAM: an MMIO exit
            word = self._fetch()
            self.pc += 4
            exit_ = self._execute(word)
            if exit_ is not None:
                self._run[32:53] = struct.pack(
                    "=Q8sIB", exit_[0], exit_[1].to_bytes(8, "little"), 8, 1
                )
                return 0

    def _fetch(self) -> int:
        assert self.memory is not None
        guest, size, address = self.memory
        assert guest <= self.pc < guest + size, f"fetch from {self.pc:#x}"
        return int.from_bytes(ctypes.string_at(address + self.pc - guest, 4), "little")

    def _execute(self, word: int) -> tuple[int, int] | None:
        """Run one word; (address, value) for a store to MMIO."""
        rd, rn = word & 0x1F, word >> 5 & 0x1F
        if word & 0xFF800000 == 0xD2800000:  # movz
            self.x[rd] = word >> 5 & 0xFFFF
        elif word & 0x9F000000 == 0x10000000:  # adr
            offset = (word >> 5 & 0x7FFFF) << 2 | word >> 29 & 3
            self.x[rd] = self.pc - 4 + (offset - (1 << 21) if offset >> 20 else offset)
        elif word & 0xFFC00000 == 0x91000000:  # add immediate
            self.x[rd] = self.x[rn] + (word >> 10 & 0xFFF)
        elif word & 0xFFD00000 == 0xD5100000:  # msr / mrs
            encoding = Encoding(
                2 + (word >> 19 & 1),
                word >> 16 & 7,
                word >> 12 & 0xF,
                word >> 8 & 0xF,
                word >> 5 & 7,
            )
            self._system_register(word & 0x00200000 != 0, encoding, rd)
        elif word & 0xFFC00000 == 0xF9000000:  # str unsigned offset
            return self.x[rn] + (word >> 10 & 0xFFF) * 8, self.x[rd]
        elif word == a64.ERET:
            self.pc = self.system["ELR_EL1"]
        else:
            assert word == a64.ISB, f"{word:#010x} at {self.pc - 4:#x}"
        return None

    def _system_register(self, read: bool, encoding: Encoding, rt: int) -> None:
        names = {a64.VBAR_EL1: "VBAR_EL1", a64.ELR_EL1: "ELR_EL1", a64.ESR_EL1: "ESR_EL1"}
        if encoding in names:
            if read:
                self.x[rt] = self.system[names[encoding]]
            else:
                self.system[names[encoding]] = self.x[rt]
        elif encoding in self.undefined:  # exception to EL1, SP_ELx
            self.system.update(ELR_EL1=self.pc - 4, ESR_EL1=UNDEFINED_SYNDROME)
            self.pc = self.system["VBAR_EL1"] + 0x200
        else:
            register_id = encoding.one_reg_id
            self.x[rt] = self.sanitised.get(register_id, self.registers.get(register_id, 0))


POOL = baseline(
    [load_embedded_profile("kvm-6.12-neoverse-n1"), load_embedded_profile("kvm-6.12-cortex-a76")]
)


@pytest.fixture
def kernel() -> GuestKvm:
    return GuestKvm()


def _verdicts(kernel: GuestKvm, run: bool = True) -> tuple[Any, dict[str, Any]]:
    [validation] = validate_models([("pool", POOL)], kernel, run=run)
    return validation, {verdict.register: verdict for verdict in validation.verdicts}


def test_guest_reads_every_id_register_in_the_feature_range(kernel: GuestKvm) -> None:
    validation, verdicts = _verdicts(kernel)
    readable = [name for name in POOL.id_registers if CATALOGUE[name].kvm_mask_index is not None]

    assert validation.guest_error == ""
    assert [n for n, v in verdicts.items() if v.guest is not None] == readable
    assert verdicts["ID_AA64PFR1_EL1"].guest == GuestRead(POOL.id_registers["ID_AA64PFR1_EL1"])
    assert verdicts["GMID_EL1"].guest == GuestRead(None, UNDEFINED_SYNDROME)
    assert verdicts["GMID_EL1"].accepted  # UNDEFINED reads as the model's zero
    assert verdicts["ICC_CTLR_EL1"].guest is None  # not an ID register
    assert validation.accepted
    assert kernel.memory is not None  # the guest stopped after its last store, at "b ."
    assert kernel.pc == kernel.memory[0] + 0x800 + 4 * (4 + 2 * len(readable) + 1)


def test_vcpu_is_prepared_as_a_vmm_does_and_everything_is_released(kernel: GuestKvm) -> None:
    _verdicts(kernel)

    assert kernel.attributes == [
        ("device", 4, 0),  # vGICv3 init (the probe's)
        ("device", 0, 2),
        ("device", 0, 3),  # distributor, redistributor addresses
        ("vcpu", 0, 0),
        ("vcpu", 0, 1),  # PMU interrupt, PMU init
    ]
    assert kernel.finalized == [abi.KVM_ARM_VCPU_SVE]
    assert kernel.open_fds == {}
    assert [mapping.closed for mapping in kernel.mappings] == [True, True]


def test_a_register_the_guest_reads_differently_is_refused(kernel: GuestKvm) -> None:
    assert POOL.id_registers["DCZID_EL0"] == 0x4  # 64-byte DC ZVA blocks, as on both hosts
    kernel.sanitised[CATALOGUE["DCZID_EL0"].one_reg_id] = 0x6  # the hardware has 256 bytes
    validation, verdicts = _verdicts(kernel)

    assert [v.register for v in validation.refused] == ["DCZID_EL0"]
    assert verdicts["DCZID_EL0"].reason == "written, but the guest reads 0x6"


def test_without_run_the_vm_never_runs(kernel: GuestKvm) -> None:
    validation, verdicts = _verdicts(kernel, run=False)

    assert validation.guest_error is None
    assert abi.KVM_RUN not in kernel.requests
    assert all(v.guest is None for v in verdicts.values())
    assert "guest_error" not in model_json(validation)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("exit", "KVM_RUN exit reason 17, not an MMIO store"),
        ("refused", r"/dev/kvm: KVM_RUN: No such device or address"),
        ("hang", r"no end within 0.2 s"),
    ],
)
def test_a_run_that_does_not_end_as_the_program_does_is_reported(
    kernel: GuestKvm, monkeypatch: pytest.MonkeyPatch, change: str, error: str
) -> None:
    if change == "exit":
        kernel.exit_reason = 17  # KVM_EXIT_INTERNAL_ERROR
    elif change == "refused":
        kernel.failures[abi.KVM_RUN] = errno.ENXIO
    else:
        monkeypatch.setattr(kvm_run, "RUN_SECONDS", 0.2)
        kernel.run_delay = 5
    started = time.monotonic()
    validation, _ = _verdicts(kernel)

    assert validation.guest_error is not None
    assert re.search(error, validation.guest_error)
    assert not validation.accepted
    assert time.monotonic() - started < 3
    assert kernel.open_fds == {}
    assert all(mapping.closed for mapping in kernel.mappings)
