"""Sets of plan types ("blocks", by index): whether each forms a pool, its cost, its model.

Validity and cost come from fit (register verdicts shared between blocks); the
whole baseline runs only for the blocks a plan proposes or explains in detail.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

from qemu_errata.core.catalogue import Catalogue, Field, Register
from qemu_errata.core.errata import ErrataTable, guest_workarounds
from qemu_errata.core.errata.hazards import (
    CAUSE_WORDS,
    Hazard,
    accept_option,
    accepted_hazards,
    accepting,
    model_hazards,
)
from qemu_errata.core.plan.fit import Fit, Fits
from qemu_errata.core.plan.types import PlanType
from qemu_errata.core.pool import (
    IDENTITY_REGISTER,
    Blocker,
    HostGroup,
    PoolModel,
    Reason,
    baseline_of_types,
    writable_bits,
)
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.core.vmm_fit import pool_refusals
from qemu_errata.core.vmms import Vmm
from qemu_errata.errors import IncompatiblePoolError

# Registers no VMM sets: a guest keeps its first host's value, which another host refuses.
NOT_SETTABLE = "{by}, and one host's KVM refuses another's value"


class Blocks:
    """The blocks of one plan: each judged once."""

    def __init__(
        self,
        types: Sequence[PlanType],
        catalogue: Catalogue,
        table: ErrataTable,
        vmm: Vmm | None,
        accepted: Sequence[str] = (),
    ) -> None:
        self.types = types
        self.catalogue = catalogue
        self.table = table
        self.vmm = vmm
        self.accepted = tuple(accepted)  # hazards the operator accepts, by name
        self.standing = [t.as_host_type() for t in types]
        self.fits = Fits(self.standing, catalogue, vmm, accepted)
        self.judged: dict[frozenset[int], Fit] = {}
        self.models: dict[frozenset[int], PoolModel] = {}
        self.hazards: dict[frozenset[int], tuple[Hazard, ...]] = {}  # each model's
        self.writable: dict[tuple[int, str, str], bool] = {}

    def fit(self, block: frozenset[int]) -> Fit:
        """Whether ``block`` forms a pool, its cost (a pair kept apart: only its blockers)."""
        if block not in self.judged:
            registers = self.apart.get(block)
            self.judged[block] = (
                self.fits.fit(block)
                if registers is None
                else self.fits.apart_blockers(block, registers)
            )
        return self.judged[block]

    def valid(self, block: frozenset[int]) -> bool:
        if len(block) == 2 and block in self.apart:
            return False
        return self.fit(block).valid

    @functools.cached_property
    def apart(self) -> dict[frozenset[int], list[int]]:
        """The pairs a register or the timer keeps apart, with those registers (Fits.apart)."""
        return self.fits.apart()

    def blockers(self, block: frozenset[int]) -> tuple[Blocker, ...]:
        """Why ``block`` forms no pool (empty when it does)."""
        return self.fit(block).blockers

    def compatible(self, first: int, second: int) -> bool:
        return first == second or self.valid(frozenset({first, second}))

    def cost(self, block: frozenset[int]) -> int:
        """Fields lost, each weighted by the hosts of the types that lose it."""
        return self.fit(block).cost

    def require_valid(self, index: int) -> None:
        """IncompatiblePoolError when type ``index`` forms no pool even alone (in the whole
        baseline's words)."""
        if not self.valid(frozenset({index})):
            self.model(frozenset({index}))

    def model(self, block: frozenset[int]) -> PoolModel:
        """The whole baseline of a block (IncompatiblePoolError if it forms no pool)."""
        if block not in self.models:
            members = [self.standing[i] for i in sorted(block)]
            hosts = self.fits.hosts(sorted(block))
            model = baseline_of_types(members, self.catalogue, self.vmm)
            hazards = model_hazards(model, hosts)
            model = accepting(model, self.accepted, hosts, hazards)
            refusals = pool_refusals(model, self.vmm, self.catalogue, hosts, hazards)
            if refusals:
                raise IncompatiblePoolError(refusals)
            self.models[block] = model
            self.hazards[block] = hazards
        return self.models[block]

    def accepted_losses(self, block: frozenset[int]) -> tuple[str, ...]:
        """The mitigations ``block``'s pool accepts to lose, in words."""
        model = self.model(block)
        hosts = self.fits.hosts(sorted(block))
        accepted = accepted_hazards(model, hazards=self.hazards[block])
        return tuple(h.describe(hosts) for h in accepted)

    def errata(self, block: frozenset[int]) -> tuple[str, ...]:
        """The ids of the errata and mitigations every guest of ``block``'s pool works around."""
        return tuple(i for ids in self.workarounds(block).values() for i in ids)

    def workarounds(self, block: frozenset[int]) -> dict[str, tuple[str, ...]]:
        """The workarounds every guest of ``block``'s pool enables, by capability."""
        model = self.model(block)
        registers = {**model.id_registers, **model.firmware_registers}
        groups = guest_workarounds(self.table, list(model.target_implementations), registers)
        capability = {e.id: e.capability or e.id for e in self.table.errata}
        return {capability.get(ids[0], ids[0]): ids for ids in groups}

    def added_errata(self, first: int, second: int) -> tuple[str, ...]:
        """Workarounds a guest of the pair enables that guests of both alone do not (a
        workaround both enable anyway is not added, whichever errata bring it)."""
        alone = set(self.workarounds(frozenset({first}))) & set(
            self.workarounds(frozenset({second}))
        )
        pair = self.workarounds(frozenset({first, second}))
        return tuple(i for key, ids in pair.items() if key not in alone for i in ids)

    def deciding(
        self, blockers: Sequence[Blocker], members: Iterable[int], *, brief: bool = False
    ) -> str:
        """The deciding fields: ``R.A, B differ and are not writable on Linux 6.12``.

        ``brief``: blockers of no field in a few words naming no host (``timer frequencies
        differ``), so that the reasons of many pairs can be grouped.
        """
        return self.decidings(blockers, members)[1 if brief else 0]

    def decidings(self, blockers: Sequence[Blocker], members: Iterable[int]) -> tuple[str, str]:
        """The deciding fields in full and in brief (see deciding), worked out once."""
        members = list(members)
        by_reason: dict[str, list[tuple[str, str]]] = {}
        others: list[str] = []
        briefly: list[str] = []
        for blocker in blockers:
            register = self.catalogue.get(blocker.register)
            if blocker.field is None or register is None:
                for words, said in (
                    (blocker.message, others),
                    (_briefly(blocker, self.vmm), briefly),
                ):
                    if words not in said:
                        said.append(words)
                continue
            reason = (
                NOT_SETTABLE.format(
                    by="set by no VMM" if self.vmm is None else f"not set by {self.vmm.name}"
                )
                if blocker.reason == "not-settable"
                else self._why_differing(register, register.field(blocker.field), members)
            )
            by_reason.setdefault(reason, []).append((blocker.register, blocker.field))
        parts = [
            f"{_field_list(fields)} {'differs and is' if len(fields) == 1 else 'differ and are'}"
            f" {reason}"
            for reason, fields in by_reason.items()
        ]
        return "; ".join(parts + others), "; ".join(parts + briefly)

    def _why_differing(self, register: Register, fld: Field, members: Sequence[int]) -> str:
        """Why no value of ``fld`` is presentable on every host: where it is not writable."""
        fixed = [i for i in members if not self._writable(register, fld, i)]
        if not fixed:
            return "writable, but KVM refuses every common value"
        kernels = sorted({_kernel(self.standing[i].profile) for i in fixed})
        return f"not writable on {' and '.join(kernels)}"

    def _writable(self, register: Register, fld: Field, index: int) -> bool:
        """Whether type ``index`` lets a VMM write ``fld`` (asked once per type and field)."""
        key = (index, fld.register, fld.name)
        if key not in self.writable:
            bits = writable_bits(self.standing[index].profile, fld.register, register)
            self.writable[key] = bits & fld.mask == fld.mask
        return self.writable[key]

    def proposed_groups(self, block: frozenset[int]) -> PoolModel:
        """The model of ``block`` with its host groups per host type (writes are alike)."""
        model = self.model(block)
        groups: list[HostGroup] = []
        for index, group in zip(sorted(block), model.host_groups, strict=True):
            groups.extend(
                HostGroup(t.describe(), t.hosts, group.writes) for t in self.types[index].host_types
            )
        return replace(model, host_groups=tuple(groups))


def _briefly(blocker: Blocker, vmm: Vmm | None) -> str:
    """A blocker of no field in a few words that name no host."""
    if blocker.reason == Reason.LOST_MITIGATION:
        return _lost_briefly(blocker)
    register = blocker.register or "the profile"
    vmm_name = "the VMM" if vmm is None else vmm.name
    words = {
        Reason.TYPES_ONLY: "a sysfs profile has no ID registers",
        Reason.NOT_REPORTED: f"{register} is not reported by every host",
        Reason.MUST_BE_EQUAL: f"bits of {register} that no field describes differ",
        Reason.KVM_REFUSES: f"KVM refuses the pool's {register}",
        Reason.TIMER_DIFFERS: "timer frequencies differ",
        Reason.VMM_CANNOT_SET: (
            f"{vmm_name} cannot give guests the pool's CPU implementations"
            if blocker.register == IDENTITY_REGISTER
            else f"{vmm_name} cannot write {register}"
        ),
    }
    return words.get(blocker.reason, blocker.message)


def _lost_briefly(blocker: Blocker) -> str:
    """A lost mitigation's blocker (hazard_blockers: it names the mitigation and its cause)."""
    mitigation = blocker.values["mitigation"]
    return (
        f"guests would lose {mitigation} where it is needed, "
        f"{CAUSE_WORDS[blocker.values['cause']]} ({accept_option(mitigation)} accepts that)"
    )


def _kernel(profile: HostProfile) -> str:
    if profile.writable_masks is None:
        return "hosts probed without KVM"
    version = profile.kernel_version
    return "an unknown kernel" if version is None else f"Linux {version[0]}.{version[1]}"


def _field_list(fields: Sequence[tuple[str, str]]) -> str:
    """``ID_AA64PFR0_EL1.RAS, AdvSIMD, FP, ID_DFR0_EL1.PerfMon``: each register named once."""
    parts: list[str] = []
    last = None
    for register, name in fields:
        parts.append(name if register == last else f"{register}.{name}")
        last = register
    return ", ".join(parts)
