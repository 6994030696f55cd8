"""Properties of the pool model over generated hosts (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qemu_errata.core.catalogue import Rule, load_catalogue
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.pool import PoolModel, baseline, check
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import IncompatiblePoolError

CATALOGUE = load_catalogue()
# One register of each rule type: lower (signed and not), higher_or_zero, exact.
REGISTERS = ("ID_AA64ISAR0_EL1", "ID_AA64PFR0_EL1", "CTR_EL0", "ID_AA64MMFR0_EL1")
MIDRS = (0x414FD0C1, 0x411FD070, 0x414FD0B1)


@st.composite
def register_values(draw: st.DrawFn, name: str) -> int:
    value = 0
    for field in CATALOGUE[name].fields:
        # Mostly small values, so that hosts often agree or differ by one step.
        value = field.with_raw(
            value,
            draw(st.integers(0, min(3, (1 << field.width) - 1)) | st.just((1 << field.width) - 1)),
        )
    return value


@st.composite
def masks(draw: st.DrawFn) -> dict[str, int] | None:
    if draw(st.integers(0, 5)) == 0:
        return None
    result = {}
    for name in REGISTERS:
        fields = CATALOGUE[name].fields
        chosen = draw(st.sets(st.sampled_from(fields)) | st.just(set(fields)))
        mask = 0
        for field in chosen:
            mask |= field.mask
        result[name] = mask
    return result


@st.composite
def hosts(draw: st.DrawFn, count: int) -> list[HostProfile]:
    return [
        HostProfile(
            host=f"h{index}",
            implementations=(Implementation(draw(st.sampled_from(MIDRS)), 0, 0, (0,)),),
            id_registers={name: draw(register_values(name)) for name in REGISTERS},
            writable_masks=draw(masks()),
            timer_frequency_hz=25_000_000,
        )
        for index in range(count)
    ]


def outcome(profiles: list[HostProfile]) -> PoolModel | frozenset[tuple[str, str | None]]:
    try:
        return baseline(profiles)
    except IncompatiblePoolError as refused:
        return frozenset((b.register, b.field) for b in refused.blockers)


@settings(max_examples=100, deadline=None)
@given(hosts(3), st.randoms(use_true_random=False))
def test_baseline_does_not_depend_on_host_order(profiles: list[HostProfile], rnd: object) -> None:
    shuffled = list(profiles)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    first, second = outcome(profiles), outcome(shuffled)
    if isinstance(first, PoolModel):
        assert isinstance(second, PoolModel)
        assert first.id_registers == second.id_registers
        assert first.target_implementations == second.target_implementations
    else:
        assert first == second


@settings(max_examples=100, deadline=None)
@given(hosts(1))
def test_baseline_of_one_host_is_that_host(profiles: list[HostProfile]) -> None:
    model = baseline(profiles)
    assert model.id_registers == profiles[0].id_registers
    assert model.losses == ()
    assert model.host_writes == {"h0": ()}


@settings(max_examples=100, deadline=None)
@given(hosts(3))
def test_every_host_can_present_its_pool_model(profiles: list[HostProfile]) -> None:
    model = outcome(profiles)
    if isinstance(model, PoolModel):
        assert [check(model, p).problems for p in profiles] == [(), (), ()]


@settings(max_examples=100, deadline=None)
@given(hosts(3))
def test_adding_a_host_never_raises_a_lower_safe_field(profiles: list[HostProfile]) -> None:
    before, after = outcome(profiles[:2]), outcome(profiles)
    if not (isinstance(before, PoolModel) and isinstance(after, PoolModel)):
        return
    for name in REGISTERS:
        for field in CATALOGUE[name].fields:
            if field.rule is Rule.LOWER:
                old = field.number(field.raw(before.id_registers[name]))
                new = field.number(field.raw(after.id_registers[name]))
                assert new <= old, field.qualified_name
