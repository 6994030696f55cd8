"""Properties of the pool model over generated hosts (hypothesis).

Every generated host is a real one, Linux 6.12 KVM on QEMU's ``max`` CPU
(the embedded profile kvm-6.12-max), with some of its writable ID-register
fields set to another value KVM accepts for that field on that host (for a
lower-safe field: a lower one), and one of three CPU implementations. Hosts
made so always form a pool: for each field, the pool's value is one of the
hosts' values, and every host can present it. So each property reaches its
assertion in every example; ``event`` tells how many pools had to lower a
field (``pytest --hypothesis-show-statistics``).
"""

from __future__ import annotations

import random

from hypothesis import event, given, settings
from hypothesis import strategies as st

from qemu_errata.core.catalogue import Field, load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.pool import Loss, PoolModel, baseline, check
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.core.registers_table import Kind, Rule
from qemu_errata.core.rules import accepts

CATALOGUE = load_catalogue()
REAL_HOST = load_embedded_profile("kvm-6.12-max")
MIDRS = (0x414FD0C1, 0x411FD070, 0x414FD0B1)
MAX_ENUMERATED_WIDTH = 8  # wider fields (whole-register ones) are left as the host has them
MAX_CHANGED_FIELDS = 12  # per host


def changeable_fields() -> list[tuple[Field, tuple[int, ...]]]:
    """Each writable field of the real host's feature registers, with the other raw values
    KVM accepts for it there.

    Cache registers stay as the host has them: KVM's check of CLIDR_EL1 reads CTR_EL0.
    """
    found = []
    for name, value in REAL_HOST.id_registers.items():
        register = CATALOGUE.get(name)
        if register is None or register.kind is not Kind.FEATURE:
            continue
        mask = REAL_HOST.writable_mask(name)
        for field in register.fields:
            if mask & field.mask != field.mask or field.width > MAX_ENUMERATED_WIDTH:
                continue
            own = field.raw(value)
            others = tuple(
                raw
                for raw in range(1 << field.width)
                if raw != own and accepts(field, raw, own, True, REAL_HOST.kernel_version)
            )
            if others:
                found.append((field, others))
    return found


CHANGEABLE = changeable_fields()
LOWER_FIELDS = [
    field
    for name in REAL_HOST.id_registers
    if name in CATALOGUE and CATALOGUE[name].kind is not Kind.IDENTITY
    for field in CATALOGUE[name].fields
    if field.rule is Rule.LOWER
]


@st.composite
def host(draw: st.DrawFn, name: str) -> HostProfile:
    registers = dict(REAL_HOST.id_registers)
    # A field drawn twice takes the later value.
    for field, values in draw(st.lists(st.sampled_from(CHANGEABLE), max_size=MAX_CHANGED_FIELDS)):
        registers[field.register] = field.with_raw(
            registers[field.register], draw(st.sampled_from(values))
        )
    midr = draw(st.sampled_from(MIDRS))
    return replace(
        REAL_HOST,
        host=name,
        implementations=(Implementation(midr, 0, 0, (0,)),),
        id_registers=registers,
    )


def hosts(count: int) -> st.SearchStrategy[list[HostProfile]]:
    return st.tuples(*(host(f"h{index}") for index in range(count))).map(list)


def by_field(loss: Loss) -> str:
    return loss.field.qualified_name


def pool_of(profiles: list[HostProfile]) -> PoolModel:
    model = baseline(profiles, CATALOGUE)
    event("the pool lowers a field" if model.losses else "the hosts agree on every field")
    return model


@settings(max_examples=100, deadline=None)
@given(hosts(3), st.randoms(use_true_random=False))
def test_baseline_does_not_depend_on_host_order(
    profiles: list[HostProfile], rnd: random.Random
) -> None:
    shuffled = list(profiles)
    rnd.shuffle(shuffled)
    first, second = pool_of(profiles), baseline(shuffled, CATALOGUE)
    assert first.id_registers == second.id_registers
    assert first.target_implementations == second.target_implementations
    assert sorted(first.losses, key=by_field) == sorted(second.losses, key=by_field)


@settings(max_examples=100, deadline=None)
@given(hosts(1))
def test_baseline_of_one_host_is_that_host(profiles: list[HostProfile]) -> None:
    (profile,) = profiles
    model = baseline(profiles, CATALOGUE)
    assert model.id_registers == {
        name: value
        for name, value in profile.id_registers.items()
        if CATALOGUE[name].kind is not Kind.IDENTITY
    }
    assert model.losses == ()
    assert model.host_writes == {"h0": ()}


@settings(max_examples=100, deadline=None)
@given(hosts(3))
def test_every_host_can_present_its_pool_model(profiles: list[HostProfile]) -> None:
    model = pool_of(profiles)
    assert [check(model, p, CATALOGUE).problems for p in profiles] == [(), (), ()]


@settings(max_examples=100, deadline=None)
@given(hosts(3))
def test_adding_a_host_never_raises_a_lower_safe_field(profiles: list[HostProfile]) -> None:
    before, after = baseline(profiles[:2], CATALOGUE), pool_of(profiles)
    for field in LOWER_FIELDS:
        old = field.number(field.raw(before.id_registers[field.register]))
        new = field.number(field.raw(after.id_registers[field.register]))
        assert new <= old, field.qualified_name
