"""Can a running pool VM arrive on a host: the one-way rules of rolling kernel upgrades (pure).

A VM carries the values it was started with: what its VMM pins (the model's
values of the registers that VMM sets), else its start host's own. The
destination's KVM judges those values as it judges any userspace write, so an
old kernel's values usually go to a new kernel and a new kernel's values
(PSCI 1.3 of Linux 7.2) do not come back to an old one (Linux 6.12 offers at
most 1.1). The register list travels too: a register the start kernel lists
and the destination's lacks (PMMIR_EL1, from Linux 7.3, for a vCPU with a PMU)
fails the incoming migration unless the VMM tolerates it. The hook's
``migrate`` decision and ``can-migrate`` are this module's ``arrival``.
"""

from __future__ import annotations

from collections.abc import Mapping

from qemu_errata.core.catalogue import Catalogue, load_catalogue
from qemu_errata.core.kernel_changes import KernelChanges, load_kernel_changes
from qemu_errata.core.pool import REGISTER_GROUPS, Blocker, PoolModel, Reason
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import record, replace
from qemu_errata.core.vmm_fit import check_with, kernel_name
from qemu_errata.core.vmms import Vmm

# Problems of check() that concern starting a VM on the host, not one arriving there.
_START_ONLY = frozenset({Reason.NOT_SETTABLE})
# Every rule below is stated as unverified until a real migration (nested-migrate) backs it.
RULES = {
    Reason.REFUSED_ON_ARRIVAL: (
        "the destination's KVM refuses a carried value as a userspace write "
        "(KVM_SET_ONE_REG rules; unverified by a real migration)"
    ),
    Reason.REGISTER_LIST: (
        "a register the start kernel lists and the destination's lacks fails the incoming "
        "migration unless the VMM tolerates it (unverified by a real migration)"
    ),
    Reason.REWRITTEN_AT_FIRST_RUN: (
        "the destination's KVM rewrites a carried field at its first run "
        "(Linux 7.3 source; unverified)"
    ),
}


@record
class Arrival:
    """The decision on one VM arriving on one host: every problem, and notes."""

    destination: str
    vmm: Vmm
    carried_from: str
    problems: tuple[Blocker, ...]
    notes: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.problems


def carried_values(
    model: PoolModel, vmm: Vmm, start: HostProfile | None, catalogue: Catalogue
) -> PoolModel:
    """The values a VM of ``model`` carries: pinned where ``vmm`` sets the register, else
    its start host's own (the model's when the start host is not known)."""
    if start is None:
        return model
    groups: dict[str, dict[str, int]] = {}
    for group in REGISTER_GROUPS:
        own: Mapping[str, int] = getattr(start, group)
        values = dict(getattr(model, group))
        for name in values:
            register = catalogue.get(name)
            if name in own and (register is None or not vmm.sets(register)):
                values[name] = own[name]
        groups[group] = values
    return replace(
        model,
        id_registers=groups["id_registers"],
        firmware_registers=groups["firmware_registers"],
        gic_registers=groups["gic_registers"],
    )


def arrival(
    model: PoolModel,
    destination: HostProfile,
    vmm: Vmm,
    start: HostProfile | None = None,
    *,
    catalogue: Catalogue | None = None,
    changes: KernelChanges | None = None,
) -> Arrival:
    """Can a VM of ``model`` (started on ``start``, if known) arrive on ``destination``?"""
    catalogue = catalogue or load_catalogue()
    changes = changes or load_kernel_changes()
    carried = carried_values(model, vmm, start, catalogue)
    origin = _origin(start)
    result = check_with(carried, destination, vmm, catalogue, changes.first_run_rewrites)
    problems = [
        _one_way(problem, carried, destination, vmm, start=start, catalogue=catalogue)
        for problem in result.problems
        if problem.reason not in _START_ONLY
    ]
    list_problems, notes = _register_lists(carried, destination, vmm, start, changes)
    return Arrival(
        destination.host,
        vmm,
        origin,
        tuple(problems + list_problems),
        (*result.notes, *notes),
    )


def _one_way(
    problem: Blocker,
    carried: PoolModel,
    destination: HostProfile,
    vmm: Vmm,
    *,
    start: HostProfile | None,
    catalogue: Catalogue,
) -> Blocker:
    """A refused carried value, named with both kernels and the remedy."""
    register = catalogue.get(problem.register)
    if register is None or problem.field is None or problem.reason is not Reason.NOT_SAFE:
        return problem
    fld = register.field(problem.field)
    # check()'s not-safe blocker names the two raw values: the model's (here what the VM
    # carries) and the host's.
    value, own = (int(problem.values[key], 16) for key in ("model", "host"))
    started = "" if start is None else f" (its start host {start.host}, Linux {kernel_name(start)})"
    if vmm.sets(register):
        remedy = (
            f"pin it in the pool model to a value every host accepts (`baseline --vmm {vmm.name}` "
            f"pins the lowest, which `render --vmm {vmm.name}` sets)"
        )
    else:
        remedy = (
            f"{vmm.name} cannot pin it ({vmm.lacks(register)}): migrate the VM to a host that "
            f"accepts it{'' if start is None else f' (Linux {kernel_name(start)} or newer)'}, or "
            f"restart it on {destination.host}"
        )
    return Blocker(
        problem.register,
        problem.field,
        (
            f"{fld.qualified_name}: the VM carries {fld.describe(value)}{started}, and "
            f"Linux {kernel_name(destination)} on {destination.host} refuses it (its own is "
            f"{fld.describe(own)}): {remedy}"
        ),
        Reason.REFUSED_ON_ARRIVAL,
        {"carried": f"{value:#x}", "host": f"{own:#x}"},
    )


def _register_lists(
    carried: PoolModel,
    destination: HostProfile,
    vmm: Vmm,
    start: HostProfile | None,
    changes: KernelChanges,
) -> tuple[list[Blocker], list[str]]:
    problems: list[Blocker] = []
    notes: list[str] = []
    for listed in changes.listed_registers:
        there = listed.listed(destination.kernel_version, carried.id_registers)
        if there is not False:
            continue
        needs = "" if listed.needs is None else f" for a vCPU with {listed.needs.qualified_name}"
        what = (
            f"{listed.register}: Linux {listed.since[0]}.{listed.since[1]} and later list it"
            f"{needs}, and Linux {kernel_name(destination)} on {destination.host} does not"
        )
        here = None if start is None else listed.listed(start.kernel_version, carried.id_registers)
        if vmm.tolerates_missing_registers:
            if here is not False:
                notes.append(
                    f"{what}: {vmm.name} tolerates it in an incoming migration (unverified)"
                )
            continue
        if here and start is not None:
            problems.append(
                Blocker(
                    listed.register,
                    None,
                    (
                        f"{what}; the VM started on {start.host} (Linux {kernel_name(start)}) "
                        f"carries it and {vmm.name} does not tolerate registers the destination "
                        f"lacks: migrate it to a host of Linux "
                        f"{listed.since[0]}.{listed.since[1]} or newer"
                    ),
                    Reason.REGISTER_LIST,
                    {"carried": "listed", "host": "not listed"},
                )
            )
        elif here is None:
            notes.append(
                f"{what}: a VM started on such a kernel cannot arrive with {vmm.name}, which does "
                f"not tolerate it (its start host is not known)"
            )
    return problems, notes


def _origin(start: HostProfile | None) -> str:
    if start is None:
        return "the model's values (the start host is not known)"
    return (
        f"the VMM's pins, else the values of its start host {start.host} "
        f"(Linux {kernel_name(start)})"
    )
