"""``qemu-errata kvm-validate``: this host's KVM judges whether it can present pool models.

For each model, a scratch VM is made exactly as the kvm probe makes it (same
vCPU features, a vGICv3 where the host has one), and every register of the
model is written: ID and firmware registers with ``KVM_SET_ONE_REG``, GIC
CPU-interface registers with ``KVM_SET_DEVICE_ATTR``, in the model's order,
as a VMM restoring them would. Per register, the kernel accepts the value or
refuses it (its errno is reported). An accepted write is read back: KVM
ignores writes to some registers (the AArch32 ID registers of a host
without AArch32) and stores others changed (a PMU version of IMPDEF becomes
0), and the guest would then not see the model's value, so such a write
counts as refused. A register this kernel does not offer cannot be written:
its guest reads zero (or, for one it reads untrapped at EL0 such as
DCZID_EL0, the hardware's value), so such a register is accepted when the
model wants that value and refused otherwise. Standard library only, so that it runs on the
nested host (qemu_errata.nested).

Without ``--run`` the VM never runs. With it, each model's VM then runs a
guest (probe.kvm_run, probe.mmio_program) that reads every ID register of the
model in KVM's feature ID range with MRS and reports each value through an
MMIO exit: this is what software in the guest sees, after KVM's own
sanitising. A register whose write was accepted but which the guest reads
differently is refused ("the guest reads ..."); an MRS that is UNDEFINED in
the guest counts as reading zero. A run that does not end as the program
does (KVM_RUN refused, an unexpected exit, no end within the deadline) is
reported with the model, which is then refused.

Exit status: 0 when every model is accepted, 1 when any register of any
model is refused, 2 for bad input or no usable /dev/kvm.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from qemu_errata.core.catalogue import Catalogue, Register, load_catalogue
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.pool_namespace import REGISTER_GROUPS
from qemu_errata.core.registers_table import Kind
from qemu_errata.probe import kvm_abi as abi
from qemu_errata.probe.el0 import untrapped_value
from qemu_errata.probe.kvm import KVM_DEVICE, Capabilities, Kernel, ScratchVm, new_vcpu
from qemu_errata.probe.kvm_run import GuestRun, LinuxRunCalls, RunCalls, run_guest
from qemu_errata.probe.mmio_program import GuestRead


@dataclass(frozen=True)
class RegisterVerdict:
    """The kernel's answer to writing one register of a model."""

    register: str
    value: int
    host: int | None  # what the new VM had, None when the kernel does not offer it
    accepted: bool
    reason: str  # why it was refused ("" when accepted)
    guest: GuestRead | None = None  # what a guest read with MRS (--run), None if not read


@dataclass(frozen=True)
class ModelValidation:
    """Every register verdict of one model on this host."""

    model: str
    kernel: str
    verdicts: tuple[RegisterVerdict, ...]
    guest_error: str | None = None  # None: no guest run (no --run); "": it ran to its end

    @property
    def accepted(self) -> bool:
        return not self.guest_error and all(verdict.accepted for verdict in self.verdicts)

    @property
    def guest_reads(self) -> int:
        return sum(verdict.guest is not None for verdict in self.verdicts)

    @property
    def refused(self) -> tuple[RegisterVerdict, ...]:
        return tuple(verdict for verdict in self.verdicts if not verdict.accepted)


def validate_models(
    models: Sequence[tuple[str, PoolModel]],
    calls: RunCalls | None = None,
    device: str = KVM_DEVICE,
    run: bool = False,
) -> list[ModelValidation]:
    """The kernel's verdicts on each (name, model), with a guest run if ``run``;
    ProbeError when KVM is not usable."""
    catalogue = load_catalogue()
    calls = calls or LinuxRunCalls()
    kernel = Kernel(calls, device)
    with contextlib.ExitStack() as open_fds:
        system = kernel.open(open_fds)
        return [
            _validate(kernel, system, name, model, catalogue, run=calls if run else None)
            for name, model in models
        ]


def _validate(
    kernel: Kernel,
    system: int,
    name: str,
    model: PoolModel,
    catalogue: Catalogue,
    *,
    run: RunCalls | None,
) -> ModelValidation:
    """The verdicts on ``model``; with ``run``, those of the guest too."""
    with contextlib.ExitStack() as open_fds:
        vm = kernel.new_fd(open_fds, system, abi.KVM_CREATE_VM, 0, "KVM_CREATE_VM")
        scratch = new_vcpu(kernel, system, vm, Capabilities(kernel, vm), open_fds)
        verdicts = write_model(kernel, scratch, model, catalogue)
        if run is None:
            return ModelValidation(name, platform.release(), tuple(verdicts))
        guest = run_guest(
            kernel,
            run,
            scratch,
            [
                register
                for register_name in model.id_registers
                if (register := catalogue.get(register_name)) is not None
                and register.kvm_mask_index is not None
            ],
        )
    return ModelValidation(name, platform.release(), _judge_guest(verdicts, guest), guest.error)


def write_model(
    kernel: Kernel, scratch: ScratchVm, model: PoolModel, catalogue: Catalogue
) -> list[RegisterVerdict]:
    """Write every register of ``model`` to the scratch VM, in the model's order, as a VMM
    restoring them would; the kernel's verdict on each (guest-view writes a model this way too)."""
    verdicts = []
    for group in REGISTER_GROUPS:
        for register_name, value in getattr(model, group).items():
            register = catalogue.get(register_name)
            if register is None:
                verdicts.append(
                    RegisterVerdict(register_name, value, None, False, "not catalogued")
                )
            elif register.kind is Kind.GIC:
                verdicts.append(_write_gic(kernel, scratch.gic, register, value))
            else:
                verdicts.append(_write_one_reg(kernel, scratch.vcpu, register, value))
    return verdicts


def _judge_guest(
    verdicts: Sequence[RegisterVerdict], guest: GuestRun
) -> tuple[RegisterVerdict, ...]:
    """The verdicts with what the guest read: an accepted write the guest does not see is
    refused. An UNDEFINED MRS reads as zero, as a register a kernel does not offer."""
    return tuple(_judge_read(verdict, guest.reads.get(verdict.register)) for verdict in verdicts)


def _judge_read(verdict: RegisterVerdict, read: GuestRead | None) -> RegisterVerdict:
    if read is None:
        return verdict
    if verdict.accepted and (read.value or 0) != verdict.value:
        return replace(
            verdict,
            guest=read,
            accepted=False,
            reason=f"written, but the guest reads {read.describe()}",
        )
    return replace(verdict, guest=read)


def _write_one_reg(kernel: Kernel, vcpu: int, register: Register, value: int) -> RegisterVerdict:
    return _write_and_read_back(
        register,
        value,
        lambda: kernel.get_one_reg(vcpu, register),
        lambda address: _write(
            kernel, vcpu, abi.KVM_SET_ONE_REG, abi.one_reg(register.one_reg_id, address)
        ),
    )


def _write_gic(kernel: Kernel, gic: int | None, register: Register, value: int) -> RegisterVerdict:
    encoding = register.encoding
    if gic is None or encoding is None:
        return RegisterVerdict(register.name, value, None, False, "no vGICv3 on this host")
    return _write_and_read_back(
        register,
        value,
        lambda: kernel.get_vgic_sysreg(gic, register),
        lambda address: _write(
            kernel,
            gic,
            abi.KVM_SET_DEVICE_ATTR,
            abi.device_attr(
                abi.KVM_DEV_ARM_VGIC_GRP_CPU_SYSREGS, abi.vgic_sysreg_attr(encoding), address
            ),
        ),
    )


def _write_and_read_back(
    register: Register, value: int, read: Callable[[], int | None], write: Callable[[int], str]
) -> RegisterVerdict:
    """The verdict on writing ``value`` to ``register``, read back as its guest would see it.

    ``read`` gives the register's value (None: not offered); ``write`` writes the
    u64 at the address it is given and says why the kernel refused ("" if it took it).
    """
    host = read()
    if host is None:
        return _absent(register, value)
    data = ctypes.c_uint64(value)
    reason = write(ctypes.addressof(data)) or _read_back(value, read())
    return RegisterVerdict(register.name, value, host, not reason, reason)


def _write(kernel: Kernel, fd: int, request: int, argument: bytearray) -> str:
    """Make one write; why the kernel refused it, or "" when it accepted it."""
    try:
        kernel.calls.ioctl(fd, request, argument)
    except OSError as error:
        code = errno.errorcode.get(error.errno or 0, str(error.errno))
        return f"{code}: {error.strerror or os.strerror(error.errno or 0)}"
    return ""


def _read_back(value: int, stored: int | None) -> str:
    """Why a write the kernel took does not present ``value``, or "" when it does."""
    if stored == value:
        return ""
    shown = "nothing" if stored is None else f"{stored:#x}"
    return f"written, but the register then reads {shown}"


def _absent(register: Register, value: int) -> RegisterVerdict:
    """A register the kernel does not offer: the guest reads 0, or the hardware's value
    where it reads it untrapped at EL0 (DCZID_EL0)."""
    hardware = untrapped_value(register.encoding)
    guest_reads = 0 if hardware is None else hardware
    accepted = value == guest_reads
    reason = (
        ""
        if accepted
        else (f"this kernel does not offer the register: its guest reads {guest_reads:#x}")
    )
    return RegisterVerdict(register.name, value, None, accepted, reason)
