"""Whether one host can present a model, each field judged as KVM judges a userspace write."""

from __future__ import annotations

from qemu_errata.core.catalogue import Catalogue, Field, Register, load_catalogue, reserved_bits
from qemu_errata.core.cpulist import format_cpus
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool.blocker import Blocker, Reason
from qemu_errata.core.pool.host import (
    IDENTITY_REGISTER,
    TIMER_REGISTER,
    WRITABLE_IDENTITY_CAPABILITY,
    host_value,
    set_by,
    undescribed_bits,
    writable_bits,
)
from qemu_errata.core.pool.model import PoolModel
from qemu_errata.core.pool_namespace import REGISTER_GROUPS
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import record
from qemu_errata.core.registers_table import Kind
from qemu_errata.core.rules import accepts, register_refusal
from qemu_errata.core.vmms import Vmm


@record
class CheckResult:
    """Whether a host can present a model: every problem, and notes that do not block."""

    host: str
    problems: tuple[Blocker, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check(
    model: PoolModel,
    profile: HostProfile,
    catalogue: Catalogue | None = None,
    vmm: Vmm | None = None,
) -> CheckResult:
    """Can ``profile``'s host present ``model``, with KVM's rules for userspace writes?

    ``vmm`` decides which firmware and GIC registers a guest started here carries from
    this host (None: all of them); vmm_fit judges what it cannot write.
    """
    catalogue = catalogue or load_catalogue()
    problems: list[Blocker] = []
    for implementation in profile.implementations:
        target = model.target_implementations.find(
            implementation.midr, implementation.revidr, implementation.aidr
        )
        if target is None:
            problems.append(
                Blocker(
                    IDENTITY_REGISTER,
                    None,
                    (
                        f"{Midr(implementation.midr).describe()} (REVIDR "
                        f"{_hex_or_unknown(implementation.revidr)}) of "
                        f"CPU{'s' if len(implementation.cpus) > 1 else ''} "
                        f"{format_cpus(implementation.cpus)}"
                        f" is not in the pool's target implementation list"
                    ),
                    Reason.NOT_IN_TARGET_LIST,
                    {"host": f"{implementation.midr:#x}"},
                )
            )
    pinned = model.id_registers.get(IDENTITY_REGISTER)
    if pinned is not None and not profile.capabilities.get(WRITABLE_IDENTITY_CAPABILITY):
        problems.append(
            Blocker(
                IDENTITY_REGISTER,
                None,
                (
                    f"the model pins the guest's MIDR to {Midr(pinned).describe()}, and this "
                    f"host's KVM cannot set it (no KVM_CAP_ARM_WRITABLE_IMP_ID_REGS)"
                ),
                Reason.CANNOT_PIN_MIDR,
                {"model": f"{pinned:#x}", "host": "MIDR not writable"},
            )
        )
    for group in REGISTER_GROUPS:
        for name, wanted in getattr(model, group).items():
            register = catalogue.get(name)
            if register is not None and register.kind is Kind.IDENTITY:
                continue
            host = host_value(profile, group, name, register)
            if host is None:
                problems.append(
                    Blocker(
                        name,
                        None,
                        f"{name} is not reported by this host",
                        Reason.NOT_REPORTED,
                        {"model": f"{wanted:#x}", "host": ""},
                    )
                )
                continue
            problems.extend(_check_register(name, register, wanted, host, profile, vmm=vmm))
            refusal = register and register_refusal(
                register, wanted, getattr(profile, group), catalogue
            )
            if refusal:
                problems.append(
                    Blocker(
                        name,
                        None,
                        f"{name} = {wanted:#x}: {refusal}",
                        Reason.KVM_REFUSES,
                        {"model": f"{wanted:#x}", "host": f"{host:#x}"},
                    )
                )
    notes = _check_timer(model, profile, problems)
    return CheckResult(profile.host, tuple(problems), notes)


def _check_register(
    name: str,
    register: Register | None,
    wanted: int,
    host: int,
    profile: HostProfile,
    *,
    vmm: Vmm | None,
) -> list[Blocker]:
    problems = []
    bits = reserved_bits(register)
    if wanted & bits != host & bits:
        what = undescribed_bits(name, register, bits)
        problems.append(
            Blocker(
                name,
                None,
                (
                    f"{what} must equal the host's: the model has {wanted & bits:#x}, "
                    f"the host {host & bits:#x}"
                ),
                Reason.MUST_BE_EQUAL,
                {"model": f"{wanted & bits:#x}", "host": f"{host & bits:#x}"},
            )
        )
    writable = writable_bits(profile, name, register)
    kernel = profile.kernel_version
    for fld in register.fields if register else ():
        field_writable = writable & fld.mask == fld.mask
        requested = fld.raw(wanted)
        if register is not None and not set_by(vmm, register):
            problems.extend(_check_carried(fld, requested, fld.raw(host), vmm))
        if accepts(fld, requested, fld.raw(host), field_writable, kernel):
            continue
        if not field_writable:
            why = "the field is not writable on this host"
        elif requested in fld.refused_on(kernel):
            why = "KVM refuses this value"
        else:
            why = f"not safe under rule {fld.rule.value}"
        problems.append(
            Blocker(
                name,
                fld.name,
                (
                    f"{fld.qualified_name}: the model presents {fld.describe(requested)}, "
                    f"the host has {fld.describe(fld.raw(host))} ({why})"
                ),
                Reason.NOT_SAFE,
                {"model": f"{requested:#x}", "host": f"{fld.raw(host):#x}"},
            )
        )
    return problems


def _check_carried(fld: Field, model: int, host: int, vmm: Vmm | None) -> list[Blocker]:
    """No VMM sets ``fld``: this host's guests carry its own value to the pool's hosts."""
    if accepts(fld, host, model, True):
        return []
    who = "no VMM sets it" if vmm is None else f"{vmm.name} cannot set it"
    return [
        Blocker(
            fld.register,
            fld.name,
            (
                f"{fld.qualified_name}: {who}, so a guest started on this host keeps "
                f"its {fld.describe(host)}, which a host of the pool (with "
                f"{fld.describe(model)}) refuses"
            ),
            Reason.NOT_SETTABLE,
            {"model": f"{model:#x}", "host": f"{host:#x}"},
        )
    ]


def _check_timer(
    model: PoolModel, profile: HostProfile, problems: list[Blocker]
) -> tuple[str, ...]:
    wanted, host = model.timer_frequency_hz, profile.timer_frequency_hz
    if wanted is None:
        return ()
    if host is None:
        return (f"the host's timer frequency is unknown; the pool needs {wanted} Hz",)
    if host != wanted:
        problems.append(
            Blocker(
                TIMER_REGISTER,
                None,
                (f"timer frequency {host} Hz differs from the pool's {wanted} Hz"),
                Reason.TIMER_DIFFERS,
                {"model": f"{wanted} Hz", "host": f"{host} Hz"},
            )
        )
    return ()


def _hex_or_unknown(value: int | None) -> str:
    return "unknown" if value is None else f"{value:#x}"
