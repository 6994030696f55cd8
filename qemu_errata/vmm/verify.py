"""Comparing what a running guest got with a pool model (pure: the reading is in qmp.py).

Each vCPU must present a MIDR of the model's target list. Where the machine
has a target implementation list (``impl-cpu``), it must hold exactly the
model's entries. A guest without a list is a difference only where it could
have one and needs it: under KVM with more than one target; under TCG no
hypercall exists to give one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import PoolModel
from qemu_errata.vmm.names import IMPL_CPU_KEYS, IMPL_CPU_PROPERTY


@dataclass(frozen=True)
class GuestCpu:
    """One vCPU as QMP reports it."""

    index: int
    qom_path: str
    midr: int


@dataclass(frozen=True)
class GuestState:
    """What a running QEMU gives its guest; ``impl_cpu`` is None without the property."""

    kvm: bool
    cpus: tuple[GuestCpu, ...]
    impl_cpu: object | None


@dataclass(frozen=True)
class VerifyReport:
    """Every difference between a guest and a model, and notes that are not differences."""

    differences: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "differences": list(self.differences), "notes": list(self.notes)}


def compare(model: PoolModel, guest: GuestState) -> VerifyReport:
    """What differs between ``guest`` and ``model``."""
    differences: list[str] = []
    notes: list[str] = []
    target_midrs = {target.midr for target in model.target_implementations}
    for cpu in guest.cpus:
        where = f"vCPU {cpu.index} ({cpu.qom_path})"
        if cpu.midr == 0 and guest.kvm:
            notes.append(f"{where}: MIDR reads 0 under KVM (QEMU does not track it); not compared")
        elif cpu.midr not in target_midrs:
            differences.append(
                f"{where} presents {Midr(cpu.midr).describe()}, "
                f"which is not a target implementation of the model"
            )
    if guest.impl_cpu is None:
        if guest.kvm and len(model.target_implementations) > 1:
            differences.append(
                f"the guest gets no target implementation list (this QEMU has no machine "
                f"property {IMPL_CPU_PROPERTY}), but the model has "
                f"{len(model.target_implementations)} implementations"
            )
        else:
            notes.append(f"no target implementation list (no machine property {IMPL_CPU_PROPERTY})")
    else:
        differences.extend(_compare_list(model, guest.impl_cpu))
    return VerifyReport(tuple(differences), tuple(notes))


def _compare_list(model: PoolModel, value: object) -> list[str]:
    entries = parse_impl_cpu(value)
    if entries is None:
        return [f"the machine's {IMPL_CPU_PROPERTY} reads {value!r}, not a list of implementations"]
    differences = [
        f"the guest's target list lacks {_describe(target)}"
        for target in model.target_implementations
        if not any(target.matches(e.midr, e.revidr, e.aidr) for e in entries)
    ]
    differences.extend(
        f"the guest's target list has {_describe(entry)}, which the model does not list"
        for entry in entries
        if model.target_implementations.find(entry.midr, entry.revidr, entry.aidr) is None
    )
    return differences


def parse_impl_cpu(value: object) -> Sequence[TargetImplementation] | None:
    """The machine's list as ``qom-get`` returns it: objects of midr/revidr/aidr numbers."""
    if not isinstance(value, list):
        return None
    entries = []
    for item in value:
        if not isinstance(item, dict):
            return None
        numbers = [_number(item.get(key)) for key in IMPL_CPU_KEYS]
        midr, revidr, aidr = numbers
        if midr is None:
            return None
        entries.append(TargetImplementation(midr, revidr, aidr))
    return entries


def _number(raw: object) -> int | None:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw, 0)
        except ValueError:
            return None
    return None


def _describe(target: TargetImplementation) -> str:
    return f"{Midr(target.midr).describe()} ({target.revidr_aidr()})"
