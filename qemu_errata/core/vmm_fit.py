"""Whether a VMM can present a pool model: baseline and check decided with its capabilities.

A pool whose hosts need ID register writes needs SYSREG properties; a pinned MIDR
needs a MIDR property and a VMM that enables KVM_CAP_ARM_WRITABLE_IMP_ID_REGS (the
masks of Linux 7.3 call MIDR/REVIDR/AIDR writable even where it is off); a target list
of several implementations needs ``impl-cpu``, without which a guest knows only the
implementation it starts on. Firmware registers the VMM sets (QEMU 11.1's
``kvm-psci-version``) are pinned to the pool's value instead of carried. What Linux 7.3
rewrites at the first run is judged here too.
"""

from __future__ import annotations

from collections.abc import Sequence

from qemu_errata.core.catalogue import Catalogue, load_catalogue
from qemu_errata.core.errata.hazards import (
    Hazard,
    Hosts,
    accepting,
    hazard_blockers,
    hazard_refusals,
    hosts_of,
    model_hazards,
    unaccepted,
)
from qemu_errata.core.kernel_changes import FirstRunRewrite, load_kernel_changes
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import (
    IDENTITY_REGISTER,
    Blocker,
    CheckResult,
    PoolModel,
    Reason,
    baseline,
    check,
)
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.registers_table import Kind
from qemu_errata.core.vmms import Vmm
from qemu_errata.errors import IncompatiblePoolError

_ID_KINDS = (Kind.FEATURE, Kind.CACHE)


def baseline_with(
    profiles: Sequence[HostProfile],
    vmm: Vmm,
    catalogue: Catalogue | None = None,
    accepted: Sequence[str] = (),
) -> PoolModel:
    """The pool model of ``profiles`` as ``vmm`` can present it, accepting those of its
    hazards ``accepted`` names (recorded in the model), or IncompatiblePoolError."""
    catalogue = catalogue or load_catalogue()
    hosts = hosts_of(profiles)
    model = baseline(profiles, catalogue, vmm)
    hazards = model_hazards(model, hosts)
    model = accepting(model, accepted, hosts, hazards)
    refusals = pool_refusals(model, vmm, catalogue, hosts, hazards)
    if refusals:
        raise IncompatiblePoolError(refusals)
    return model


def pool_refusals(
    model: PoolModel,
    vmm: Vmm | None,
    catalogue: Catalogue,
    hosts: Hosts | None = None,
    hazards: Sequence[Hazard] | None = None,
) -> list[Blocker]:
    """What the pool needs that ``vmm`` cannot do, host type by host type (None: any VMM
    can), and the mitigations its guests skip on hosts that need them, unless accepted
    (core.errata.hazards; ``hosts`` names the hosts of each implementation; ``hazards``
    the model's, when already found)."""
    lost = hazard_refusals(model, hosts, hazards)
    if vmm is None:
        return lost
    refusals = []
    if not vmm.sysreg_series:
        for group in model.host_groups:
            written = [w for w in group.writes if _is_id_register(w, catalogue)]
            if written:
                refusals.append(
                    Blocker(
                        written[0],
                        None,
                        (
                            f"{group.label} needs {', '.join(written)} written to present the "
                            f"pool's values, and {vmm.describe()} has no SYSREG_* CPU "
                            f"properties (custom host model series): it cannot write them"
                        ),
                        Reason.VMM_CANNOT_SET,
                        {group.label: ", ".join(written)},
                    )
                )
    return refusals + _identity_refusals(model, vmm) + lost


def check_with(
    model: PoolModel,
    profile: HostProfile,
    vmm: Vmm,
    catalogue: Catalogue | None = None,
    rewrites: Sequence[FirstRunRewrite] | None = None,
) -> CheckResult:
    """Can ``profile``'s host present ``model`` with ``vmm``? (pool.check, and what the VMM
    cannot write, and what the host's kernel rewrites at the first run)."""
    catalogue = catalogue or load_catalogue()
    result = check(model, profile, catalogue, vmm)
    problems = [*result.problems, *_host_refusals(model, profile, vmm, catalogue)]
    problems += first_run_problems(model, profile, rewrites)
    problems += host_hazard_refusals(model, profile)
    return CheckResult(result.host, tuple(problems), result.notes)


def host_hazard_refusals(model: PoolModel, host: HostProfile) -> list[Blocker]:
    """The hazards of ``model`` that take a mitigation from ``host``'s implementations,
    unless the model accepts them (what the hook refuses there too)."""
    found = (
        model.target_implementations.find(i.midr, i.revidr, i.aidr) for i in host.implementations
    )
    own = {target for target in found if target is not None}
    hosts = {target: [host] for target in own}
    hazards = unaccepted(model_hazards(model, hosts), model.accepted_lost_mitigations)
    involved = [h for h in hazards if own & set(h.needed_on)]
    return hazard_blockers(involved, hosts)


def first_run_problems(
    model: PoolModel, host: HostProfile, rewrites: Sequence[FirstRunRewrite] | None = None
) -> list[Blocker]:
    """Fields ``host``'s KVM accepts in the model's values but rewrites at the first run."""
    values = model.id_registers
    problems = []
    for rewrite in load_kernel_changes().first_run_rewrites if rewrites is None else rewrites:
        becomes = rewrite.result(host.kernel_version, values)
        if becomes is None:
            continue
        fld = rewrite.field
        written = fld.raw(values[fld.register])
        missing = rewrite.missing(values)
        problems.append(
            Blocker(
                fld.register,
                fld.name,
                (
                    f"{fld.qualified_name}: Linux {kernel_name(host)} accepts "
                    f"{fld.describe(written)} but rewrites it at the vCPU's first run to "
                    f"{fld.describe(becomes)} ({fld.register} = "
                    f"{fld.with_raw(values[fld.register], becomes):#x}) because "
                    f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} 0: the guest "
                    f"would not see the model's value"
                ),
                Reason.REWRITTEN_AT_FIRST_RUN,
                {"model": f"{written:#x}", "host": f"{becomes:#x}"},
            )
        )
    return problems


def _host_refusals(
    model: PoolModel, profile: HostProfile, vmm: Vmm, catalogue: Catalogue
) -> list[Blocker]:
    refusals = []
    if not vmm.sysreg_series:
        differing = [
            name
            for name, value in model.id_registers.items()
            if _is_id_register(name, catalogue) and profile.id_registers.get(name, value) != value
        ]
        if differing:
            refusals.append(
                Blocker(
                    differing[0],
                    None,
                    (
                        f"the model's {', '.join(differing)} differ from this host's, and "
                        f"{vmm.describe()} has no SYSREG_* CPU properties (custom host model "
                        f"series): it cannot write them"
                    ),
                    Reason.VMM_CANNOT_SET,
                    {"host": ", ".join(differing)},
                )
            )
    return refusals + _identity_refusals(model, vmm)


def _identity_refusals(model: PoolModel, vmm: Vmm) -> list[Blocker]:
    refusals = []
    pinned = model.id_registers.get(IDENTITY_REGISTER)
    if pinned is not None and not (vmm.sets_midr and vmm.writable_imp_id_regs):
        lacks = [
            *(["no CPU property setting MIDR_EL1"] if not vmm.sets_midr else []),
            *(
                ["it does not enable KVM_CAP_ARM_WRITABLE_IMP_ID_REGS"]
                * (not vmm.writable_imp_id_regs)
            ),
        ]
        refusals.append(
            Blocker(
                IDENTITY_REGISTER,
                None,
                (
                    f"the model pins the guest's MIDR to {Midr(pinned).describe()}, and "
                    f"{vmm.describe()} cannot set it ({'; '.join(lacks)}), whatever KVM's "
                    f"writable masks say"
                ),
                Reason.VMM_CANNOT_SET,
                {"model": f"{pinned:#x}"},
            )
        )
    targets = model.target_implementations
    if len(targets) > 1 and not vmm.impl_cpu:
        refusals.append(
            Blocker(
                IDENTITY_REGISTER,
                None,
                (
                    f"the pool has {len(targets)} target implementations, and {vmm.describe()} "
                    f"cannot give guests the list (no -machine impl-cpu): a guest would apply "
                    f"only the errata workarounds of the implementation it starts on"
                ),
                Reason.VMM_CANNOT_SET,
                {"model": ", ".join(f"{t.midr:#x}" for t in targets)},
            )
        )
    return refusals


def _is_id_register(name: str, catalogue: Catalogue) -> bool:
    register = catalogue.get(name)
    return register is not None and register.kind in _ID_KINDS


def kernel_name(profile: HostProfile) -> str:
    """``7.3`` of a profile probed on Linux 7.3 (``unknown`` when it does not say)."""
    version = profile.kernel_version
    return "unknown" if version is None else f"{version[0]}.{version[1]}"
