"""Planning pools: the matrix, the exact partition, the heuristic, the explanations."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from qemu_errata.core import plan as plan_module
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.errata import hazards as hazards_module
from qemu_errata.core.errata import load_errata_table
from qemu_errata.core.errata.hazards import Hazard
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.plan import plan, plan_types, pools_served
from qemu_errata.core.plan import proposal as proposal_module
from qemu_errata.core.plan.blocks import Blocks
from qemu_errata.core.pool import PoolModel, Reason, baseline, check
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.core.vmms import vmm_named
from qemu_errata.errors import IncompatiblePoolError, InputError, NoPartitionError
from qemu_errata.testbed.fleet import synthetic_fleet

ISAR0 = "ID_AA64ISAR0_EL1"
TLB, TS, FHM = 56, 52, 48  # the lsb of three "lower" fields of ID_AA64ISAR0_EL1


def crafted(host: str, values: dict[int, int], writable: tuple[int, ...]) -> HostProfile:
    """A host whose ISAR0 has ``values`` (by field lsb), only the ``writable`` fields writable."""
    return HostProfile(
        host=host,
        implementations=(Implementation(0x414FD0C1, 0, 0, (0, 1)),),
        id_registers={ISAR0: sum(v << lsb for lsb, v in values.items())},
        writable_masks={ISAR0: sum(0xF << lsb for lsb in writable)},
        timer_frequency_hz=25_000_000,
    )


# A+B, A+C and B+D can share a pool, A+D, B+C and C+D cannot (a field that differs and is
# writable on neither host); A+B is the cheapest pair. Merging the cheapest pair first
# leaves C and D alone: 3 pools. The fewest is 2: A+C and B+D.
A = crafted("a", {TLB: 0, TS: 2, FHM: 2}, (TS, FHM))
B = crafted("b", {TLB: 2, TS: 0, FHM: 2}, (TLB, FHM))
C = crafted("c", {TLB: 2, TS: 1, FHM: 0}, (TLB,))
D = crafted("d", {TLB: 1, TS: 2, FHM: 1}, (TS,))

N1 = load_embedded_profile("kvm-6.12-neoverse-n1")
A76 = load_embedded_profile("kvm-6.12-cortex-a76")
A72 = load_embedded_profile("kvm-6.12-cortex-a72")
A57 = load_embedded_profile("kvm-6.12-cortex-a57")
A53 = 0x410FD034  # Arm Cortex-A53 r0p4: on the Spectre-v4 and Spectre-BHB safe lists
N1_72 = load_embedded_profile("kvm-7.2-neoverse-n1")
A64FX = load_embedded_profile("kvm-6.12-a64fx")


def pools_of(proposal: plan_module.Plan) -> list[set[str]]:
    return [set(pool.hosts) for pool in proposal.pools]


def test_the_exact_search_finds_the_fewest_pools_where_merging_the_cheapest_pair_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exact = plan([A, B, C, D])
    assert exact.exact
    assert pools_of(exact) == [{"a", "c"}, {"b", "d"}]
    assert [pool.cost for pool in exact.pools] == [3, 3]
    monkeypatch.setattr(proposal_module, "EXACT_TYPES", 0)
    merged = plan([A, B, C, D])
    assert not merged.exact
    assert pools_of(merged) == [{"a", "b"}, {"c"}, {"d"}]
    with pytest.raises(NoPartitionError, match="no partition into 2 pools exists"):
        plan([A, B, C, D], limit=2)


def test_the_matrix_says_which_pairs_can_share_a_pool() -> None:
    proposal = plan([A, B, C, D])
    compatible = {(p.first.label, p.second.label): p.compatible for p in proposal.pairings}
    assert compatible == {
        ("a", "b"): True,
        ("a", "c"): True,
        ("a", "d"): False,
        ("b", "c"): False,
        ("b", "d"): True,
        ("c", "d"): False,
    }
    apart = proposal.pairing(proposal.types[0], proposal.types[3])
    assert apart.deciding == f"{ISAR0}.TLB differs and is not writable on an unknown kernel"
    assert apart.errata == ()


def test_a_pair_names_the_errata_sharing_a_pool_adds_to_its_guests() -> None:
    # A Cortex-A72 guest pooled with a Cortex-A57 (r1p0) enables the A57's errata too.
    proposal = plan([A72, A57])
    assert proposal.pairings[0].errata == ("ARM erratum 832075", "ARM erratum 834220")
    assert {"ARM erratum 832075", "ARM erratum 834220"} <= set(proposal.pools[0].errata)
    alone = set(plan([A72]).pools[0].errata)
    assert "ARM erratum 1319367" in alone
    assert "ARM erratum 832075" not in alone


def test_lost_fields_are_weighted_by_hosts() -> None:
    # Every field writable everywhere, so any two pool. X+Y loses TLB on X; X+Z loses TS
    # and FHM on X; Y+Z loses TS and FHM on Y and TLB on Z. With one host each, the
    # cheapest two pools keep X with Y; with ten hosts like X, they keep Y with Z.
    every = (TLB, TS, FHM)
    x = crafted("x", {TLB: 2, TS: 2, FHM: 2}, every)
    y = crafted("y", {TLB: 1, TS: 2, FHM: 2}, every)
    z = crafted("z", {TLB: 2, TS: 1, FHM: 1}, every)
    one_each = plan([x, y, z], limit=2)
    assert pools_of(one_each) == [{"x", "y"}, {"z"}]
    many = [replace(x, host=f"x{n}") for n in range(10)]
    weighted = plan([*many, y, z], limit=2)
    assert pools_of(weighted) == [{h.host for h in many}, {"y", "z"}]
    assert [pool.cost for pool in weighted.pools] == [0, 3]


def test_the_default_is_the_fewest_pools_and_each_explains_the_deciding_fields() -> None:
    profiles = [N1, A76, A72, A57, N1_72, A64FX]
    proposal = plan(profiles)
    # Linux 7.2 offers PSCI 1.3 and 6.12 PSCI 1.1, and no VMM sets the PSCI version: a
    # guest started on the 7.2 N1 could not move to a 6.12 host, so it pools alone.
    assert [[t.label for t in pool.types] for pool in proposal.pools] == [
        ["neoverse-n1-linux-6.12", "cortex-a76-linux-6.12"],
        ["cortex-a72-linux-6.12", "cortex-a57-linux-6.12"],
        ["neoverse-n1-linux-7.2"],
        ["a64fx-linux-6.12"],
    ]
    described = [r.describe() for r in proposal.reasons]
    reasons = [r.split(" and are ")[0] for r in described]
    first = proposal.pools[0].id
    assert (
        f"T3 (cortex-a72-linux-6.12) cannot join pool {first} (with T1): ID_AA64PFR0_EL1.RAS, "
        "AdvSIMD, FP, ID_AA64MMFR1_EL1.XNX, VH, VMIDBits differ"
    ) in reasons
    assert (
        f"T5 (neoverse-n1-linux-7.2) cannot join pool {first} (with T1): "
        "KVM_REG_ARM_PSCI_VERSION.Version differs and is set by no VMM, and one host's KVM "
        "refuses another's value"
    ) in described
    with pytest.raises(NoPartitionError) as refused:
        plan(profiles, limit=2)
    # The refusal names types by their hosts (no T ids: it prints no table defining them),
    # and carries, per pair of them, the blockers.
    assert str(refused.value) == (
        "no partition into 2 pools exists (exact search): 4 types cannot share a pool "
        "pairwise: neoverse-n1-linux-6.12 (Arm Neoverse-N1 r4p1, Linux 6.12); "
        "cortex-a72-linux-6.12 (Arm Cortex-A72 r0p3, Linux 6.12); neoverse-n1-linux-7.2 "
        "(Arm Neoverse-N1 r4p1, Linux 7.2); a64fx-linux-6.12 (Fujitsu A64FX r1p0, Linux 6.12)"
    )
    pairs = {frozenset(b.values) for b in refused.value.blockers}
    assert frozenset({"neoverse-n1-linux-6.12", "cortex-a72-linux-6.12"}) in pairs
    assert frozenset({"neoverse-n1-linux-7.2", "a64fx-linux-6.12"}) in pairs


def test_every_host_is_in_one_pool_whose_model_baseline_gives_and_check_passes() -> None:
    profiles = [N1, A76, A72, A57, N1_72, A64FX]
    proposal = plan(profiles)
    placed = [host for pool in proposal.pools for host in pool.hosts]
    assert sorted(placed) == sorted(p.host for p in profiles)
    by_host = {p.host: p for p in profiles}
    for pool in proposal.pools:
        members = [by_host[h] for h in pool.hosts]
        assert baseline(members).id_registers == pool.model.id_registers
        assert all(check(pool.model, member).ok for member in members)


def test_types_that_differ_only_in_implementations_plan_as_one() -> None:
    fleet = synthetic_fleet(hosts=120, types=6)  # N1 and A76, three REVIDRs each
    types = plan_types(fleet)
    assert [len(t.host_types) for t in types] == [3, 3]
    assert types[0].describe() == (
        "T1: 60 hosts like rack000-h00000: Arm Neoverse-N1 r4p1, Linux 6.12 (REVIDR 0x0, 0x1, 0x2)"
    )
    proposal = plan(fleet)
    assert len(proposal.pools) == 1
    pool = proposal.pools[0]
    assert len(pool.model.target_implementations) == 6
    assert [len(g.hosts) for g in pool.model.host_groups] == [20] * 6
    assert pool.model.id_registers == baseline(fleet).id_registers


def test_a_thunderx_is_not_planned_as_one_type_with_a_host_whose_kpti_it_forces_off() -> None:
    # Cavium erratum 27456 (ThunderX CN88xx r0p0-r1p1) forces KPTI off for every 6.15+
    # guest of a list naming it: a Cortex-A75 (Meltdown, no CSV3) of the same registers
    # is kept apart from it, as a safe-listed CPU is from one that needs the mitigation.
    n1 = load_embedded_profile("kvm-7.2-neoverse-n1")
    pfr0 = n1.id_registers["ID_AA64PFR0_EL1"] & ~(0xF << 60)  # CSV3 = 0
    hosts = [
        replace(
            n1,
            host=host,
            implementations=(replace(n1.implementations[0], midr=midr),),
            id_registers={**n1.id_registers, "ID_AA64PFR0_EL1": pfr0},
        )
        for host, midr in (
            ("thunderx", 0x431F0A11),
            ("thunderx-2", 0x431F0A11),
            ("a75", 0x413FD0A1),
        )
    ]
    assert [t.hosts for t in plan_types(hosts)] == [("thunderx", "thunderx-2"), ("a75",)]
    assert len(plan(hosts).pools) == 2


def test_a_candidate_pool_accepting_lost_mitigations_finds_its_hazards_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What it accepts, what it refuses and what accepting costs all come from one finding
    # (every release's tables judged: the dearest part of a candidate pool).
    n1 = load_embedded_profile("kvm-7.2-neoverse-n1")
    a53 = replace(n1, host="a53", implementations=(replace(n1.implementations[0], midr=A53),))
    blocks = Blocks(
        plan_types([n1, a53]), load_catalogue(), load_errata_table(), None, ["Spectre-BHB"]
    )
    found: list[tuple[Hazard, ...]] = []
    finding = hazards_module.pool_hazards

    def counted(*given: Any, **named: Any) -> tuple[Hazard, ...]:
        found.append(finding(*given, **named))
        return found[-1]

    monkeypatch.setattr(hazards_module, "pool_hazards", counted)
    pair = blocks.fit(frozenset({0, 1}))
    assert [b.values["mitigation"] for b in pair.blockers] == ["Spectre-v4"]
    assert pair.cost > 0  # the accepted Spectre-BHB, on the N1
    assert len(found) == 1


def test_the_heuristic_plans_a_mixed_fleet_of_many_types() -> None:
    models = (
        "kvm-6.12-neoverse-n1",
        "kvm-6.12-cortex-a72",
        "kvm-7.2-cortex-a76",
        "kvm-6.12-cortex-a57",
        "kvm-6.12-a64fx",
        "kvm-7.2-max",
        "kvm-6.12-cortex-a76",
        "kvm-7.2-neoverse-n1",
        "kvm-7.2-cortex-a72",
        "kvm-7.2-a64fx",
        "kvm-6.12-max",
    )
    fleet = synthetic_fleet(hosts=1000, types=30, models=models)
    proposal = plan(fleet)
    assert not proposal.exact
    assert len(proposal.types) == 11
    placed = sorted(host for pool in proposal.pools for host in pool.hosts)
    assert placed == sorted(p.host for p in fleet)
    # One pool per family and kernel (no VMM sets the PSCI version, which 6.12 and 7.2
    # differ in): N1 + A76, A72 (+ A57), A64FX, max (part 0x051), each on 6.12 and on 7.2.
    families = sorted(
        (
            min(t.host_types[0].profile.kernel_version or (0, 0) for t in pool.types),
            sorted(
                {t.host_types[0].profile.implementations[0].midr >> 4 & 0xFFF for t in pool.types}
            ),
        )
        for pool in proposal.pools
    )
    assert families == [
        ((6, 12), [0x001]),
        ((6, 12), [0x051]),
        ((6, 12), [0xD07, 0xD08]),
        ((6, 12), [0xD0B, 0xD0C]),
        ((7, 2), [0x001]),
        ((7, 2), [0x051]),
        ((7, 2), [0xD08]),  # no Cortex-A57 on Linux 7.2 in this fleet
        ((7, 2), [0xD0B, 0xD0C]),
    ]
    assert all(
        len({t.host_types[0].profile.kernel_version for t in pool.types}) == 1
        for pool in proposal.pools
    )


def test_hosts_serve_every_pool_whose_model_they_can_present() -> None:
    # Two pools lose nothing: x alone and z alone. x (same MIDR, every field writable) can
    # lower its TS and FHM to z's model; z cannot raise its own to x's.
    every = (TLB, TS, FHM)
    x = crafted("x", {TLB: 2, TS: 2, FHM: 2}, every)
    z = crafted("z", {TLB: 2, TS: 1, FHM: 1}, every)
    proposal = plan([x, z], limit=2)
    assert pools_of(proposal) == [{"x"}, {"z"}]
    served = pools_served(proposal, [x, z])
    x_pool, z_pool = (pool.id for pool in proposal.pools)
    assert served == {"x": (x_pool, z_pool), "z": (z_pool,)}


def test_bad_requests() -> None:
    with pytest.raises(ValueError, match="needs at least 1"):
        plan([N1], limit=0)
    with pytest.raises(
        InputError, match=r"plan: host name 'neoverse-n1-linux-6\.12' is given by two"
    ):
        plan([N1, N1])
    sysfs_only = replace(N1, host="sysfs", id_registers={})
    with pytest.raises(IncompatiblePoolError, match="CPU types only"):
        plan([N1, sysfs_only])


def test_a_vmm_that_cannot_present_a_pair_keeps_it_apart_in_every_search() -> None:
    # Debian 12's QEMU 7.2 has no SYSREG_* properties, no impl-cpu and no kvm-psci-version:
    # N1 + A76 needs ID register writes and a target list of two, and the 7.2 N1's PSCI 1.3
    # is refused by 6.12's KVM. Validity that skipped the VMM's refusals would pool them
    # and then find no model for the pool.
    qemu_72 = vmm_named("qemu-7.2")
    proposal = plan([N1, A76, N1_72], vmm=qemu_72)
    assert [[t.label for t in pool.types] for pool in proposal.pools] == [
        ["neoverse-n1-linux-6.12"],
        ["cortex-a76-linux-6.12"],
        ["neoverse-n1-linux-7.2"],
    ]
    n1_a76 = proposal.pairing(proposal.types[0], proposal.types[1])
    assert {b.reason for b in n1_a76.blockers} == {Reason.VMM_CANNOT_SET}
    monkeypatch = pytest.MonkeyPatch()
    with monkeypatch.context() as patched:
        patched.setattr(proposal_module, "EXACT_TYPES", 0)
        merged = plan([N1, A76, N1_72], vmm=qemu_72)
    assert len(merged.pools) == 3


def whole_baseline(blocks: Blocks, block: frozenset[int]) -> PoolModel | IncompatiblePoolError:
    """The whole baseline of ``block`` (and the VMM's refusals), or why there is none."""
    try:
        return blocks.model(block)
    except IncompatiblePoolError as refused:
        return refused


@pytest.mark.parametrize("vmm", [None, "qemu-7.2", "qemu-11.1", "qemu-sysreg-v10"])
def test_the_fast_fit_of_every_block_agrees_with_the_whole_baseline(vmm: str | None) -> None:
    # Registers decided one by one and shared between blocks must give what baseline and
    # the VMM's refusals give for the block as a whole: valid or not, and the cost.
    profiles = [N1, A76, A72, A57, N1_72, A64FX, load_embedded_profile("kvm-7.3-cortex-a76")]
    chosen = None if vmm is None else vmm_named(vmm)
    types = plan_types(profiles)
    blocks = Blocks(types, load_catalogue(), load_errata_table(), chosen)
    invalid_pairs: set[frozenset[int]] = set()
    for size in (1, 2, 3):
        for block in map(frozenset, itertools.combinations(range(len(types)), size)):
            whole = whole_baseline(blocks, block)
            fit = blocks.fit(block)
            if isinstance(whole, IncompatiblePoolError):
                assert not fit.valid, sorted(block)
                if size == 2:
                    # A pair's blockers come from the registers that keep it apart: the
                    # same as its fit register by register, in the whole baseline's words.
                    assert fit.blockers == blocks.fits.fit(block).blockers
                    assert {b.message for b in fit.blockers} == {b.message for b in whole.blockers}
                    invalid_pairs.add(block)
                continue
            assert fit.valid, sorted(block)
            host_fields = sum(len(loss.host_values) for loss in whole.losses)
            assert fit.cost == host_fields  # one host per type here
            assert fit.lost == {loss.field.qualified_name for loss in whole.losses}
    # The pairs found apart register by register are pairs that form no pool; without a
    # VMM's refusals, every such pair.
    assert set(blocks.apart) <= invalid_pairs
    if vmm is None:
        assert set(blocks.apart) == invalid_pairs


def test_types_that_read_alike_are_told_apart_by_what_separates_them() -> None:
    # Same CPU and kernel: one with a timer of its own, one with another PSCI version, one
    # with a lowered ID field. Each description names what separates it from its nearest.
    timer = replace(N1, host="timer", timer_frequency_hz=25_000_000)
    firmware = replace(
        N1,
        host="psci",
        firmware_registers={**N1.firmware_registers, "KVM_REG_ARM_PSCI_VERSION": 0x10000},
    )
    aes = load_catalogue()[ISAR0].field("AES")
    lowered = replace(
        N1,
        host="no-aes",
        id_registers={**N1.id_registers, ISAR0: aes.with_raw(N1.id_registers[ISAR0], 0)},
    )
    words = [t.describe() for t in plan_types([N1, timer, firmware, lowered, A72])]
    assert words == [
        "T1: 1 host neoverse-n1-linux-6.12: Arm Neoverse-N1 r4p1, Linux 6.12, timer 62.5 MHz",
        "T2: 1 host timer: Arm Neoverse-N1 r4p1, Linux 6.12, timer 25 MHz",
        "T3: 1 host psci: Arm Neoverse-N1 r4p1, Linux 6.12, "
        "KVM_REG_ARM_PSCI_VERSION.Version '1.0' (0x10000)",
        "T4: 1 host no-aes: Arm Neoverse-N1 r4p1, Linux 6.12, ID_AA64ISAR0_EL1.AES NI (0x0)",
        "T5: 1 host cortex-a72-linux-6.12: Arm Cortex-A72 r0p3, Linux 6.12",
    ]
