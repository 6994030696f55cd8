"""Pool ids derive from what a pool presents, never from the order of the profiles."""

from __future__ import annotations

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.plan import plan
from qemu_errata.core.pool_ids import PreviousPlan, kept_ids, moves
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.core.upgrade import upgraded
from qemu_errata.core.vmms import vmm_named


def host(name: str, embedded: str) -> HostProfile:
    return replace(load_embedded_profile(embedded), host=name)


FLEET = [
    host("m-n1", "kvm-6.12-neoverse-n1"),
    host("n-a76", "kvm-6.12-cortex-a76"),
    host("o-a72", "kvm-6.12-cortex-a72"),
    host("p-n1", "kvm-7.2-neoverse-n1"),
]


def ids(profiles: list[HostProfile], **options: object) -> dict[str, str]:
    """Host -> its pool's id."""
    proposal = plan(profiles, **options)  # type: ignore[arg-type]
    return {h: pool.id for pool in proposal.pools for h in pool.hosts}


def test_a_host_whose_name_sorts_first_changes_no_pool_id() -> None:
    before = ids(FLEET)
    after = ids([host("a-n1", "kvm-6.12-neoverse-n1"), *FLEET])
    assert {h: after[h] for h in before} == before
    assert after["a-n1"] == before["m-n1"]


def test_the_order_of_the_profiles_changes_no_id() -> None:
    assert ids(FLEET) == ids(list(reversed(FLEET)))


def test_a_new_type_pooled_apart_changes_no_other_id() -> None:
    before = ids(FLEET)
    after = ids([*FLEET, host("0-a64fx", "kvm-6.12-a64fx")])
    assert {h: after[h] for h in before} == before


def test_previous_ids_are_kept_and_moves_listed() -> None:
    qemu_72, qemu_11 = vmm_named("qemu-7.2"), vmm_named("qemu-11.1")
    fleet = [FLEET[0], FLEET[3]]  # N1 on 6.12 and 7.2: apart without a PSCI pin
    first = plan(fleet, vmm=qemu_72)
    previous = PreviousPlan({p.id: frozenset(p.hosts) for p in first.pools})
    second = plan(fleet, vmm=qemu_11, previous=previous)
    [pool] = second.pools
    assert pool.id in previous.pools
    [move] = second.moves
    assert move.after == pool.id
    assert move.before != pool.id


def test_kept_ids_give_each_previous_id_to_the_pool_with_most_of_its_hosts() -> None:
    previous = PreviousPlan({"old": frozenset({"a", "b", "c"})})
    kept = kept_ids([("x", frozenset({"a"})), ("y", frozenset({"b", "c"}))], previous)
    assert kept == {"x": "x", "y": "old"}
    assert [m.describe() for m in moves({"x": frozenset({"a"})}, previous)] == [
        "a: pool old -> pool x",
        "b: pool old -> gone",
        "c: pool old -> gone",
    ]


def test_a_kernel_upgrade_takes_the_new_kernel_s_kvm_facts_and_keeps_the_host_s_values() -> None:
    embedded = {
        name: load_embedded_profile(name)
        for name in ("kvm-6.12-neoverse-n1", "kvm-7.3-neoverse-n1")
    }
    after = upgraded(FLEET[0], (7, 3), embedded)
    assert after is not None
    assert after.kernel_version == (7, 3)
    assert after.firmware_registers["KVM_REG_ARM_PSCI_VERSION"] == 0x10003
    assert after.capabilities["writable_imp_id_regs"] is True
    assert after.host == "m-n1"
    assert upgraded(FLEET[1], (7, 3), embedded) is None  # no A76 profiles given
