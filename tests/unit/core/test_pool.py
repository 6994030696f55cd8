"""The pool model: baseline of several hosts, and whether one host can present it."""

from __future__ import annotations

from typing import Any

import pytest
from support.hosts import (
    CORTEX_A57_MIDR,
    CORTEX_A57_REGISTERS,
    CORTEX_A76_MIDR,
    NEOVERSE_N1_MIDR,
    NEOVERSE_N1_REGISTERS,
    all_fields_writable,
    profile_json,
)

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.pool import PoolModel, baseline, check, model_from_json
from qemu_errata.core.profile import HostProfile, profile_from_json
from qemu_errata.errors import IncompatiblePoolError, InputError, ProfileError


def profile(
    host: str, midr: str, registers: dict[str, str], masks: Any = "all", **extra: Any
) -> HostProfile:
    if masks == "all":
        masks = all_fields_writable(registers)
    data = profile_json(host, midr, registers, masks, **extra)
    return profile_from_json(data, f"{host}.json")


def n1(**extra: Any) -> HostProfile:
    return profile("n1", NEOVERSE_N1_MIDR, NEOVERSE_N1_REGISTERS, **extra)


def a57(**extra: Any) -> HostProfile:
    return profile("a57", CORTEX_A57_MIDR, CORTEX_A57_REGISTERS, **extra)


def field_value(model: PoolModel, register: str, field: str) -> int:
    return load_catalogue()[register].field(field).raw(model.id_registers[register])


def test_writable_lower_safe_fields_take_the_lowest_value() -> None:
    model = baseline([n1(), a57()])
    # Neoverse-N1 has LSE atomics (2), RDM (1), DotProd (1); Cortex-A57 none of them.
    assert field_value(model, "ID_AA64ISAR0_EL1", "ATOMIC") == 0
    assert field_value(model, "ID_AA64ISAR0_EL1", "RDM") == 0
    assert field_value(model, "ID_AA64ISAR0_EL1", "DP") == 0
    assert field_value(model, "ID_AA64ISAR0_EL1", "AES") == 2  # both have PMULL


def test_lost_features_are_explained_by_name() -> None:
    model = baseline([n1(), a57()])
    explanations = [loss.explain() for loss in model.losses]
    assert "ID_AA64ISAR0_EL1.ATOMIC: the pool presents NI (0x0); n1 has IMP (0x2)" in explanations


def test_signed_field_not_implemented_is_lowest() -> None:
    # Cortex-A57 has FP 0 (IMP); a host without FP has 0xF; the pool gets 0xF.
    no_fp = dict(CORTEX_A57_REGISTERS, ID_AA64PFR0_EL1="0xf2222")
    model = baseline([a57(), profile("nofp", "0x410fd034", no_fp)])
    assert field_value(model, "ID_AA64PFR0_EL1", "FP") == 0xF


def test_differing_field_that_is_not_writable_is_refused_with_hosts_and_values() -> None:
    masks = all_fields_writable(NEOVERSE_N1_REGISTERS)
    isar0_no_atomic = load_catalogue()["ID_AA64ISAR0_EL1"].field("ATOMIC").mask
    masks["ID_AA64ISAR0_EL1"] = hex(int(masks["ID_AA64ISAR0_EL1"], 16) & ~isar0_no_atomic)
    with pytest.raises(IncompatiblePoolError) as refused:
        baseline([n1(masks=masks), a57()])
    messages = [b.message for b in refused.value.blockers]
    assert (
        "ID_AA64ISAR0_EL1.ATOMIC differs and no value is presentable on every host: "
        "n1=IMP (0x2) (not writable), a57=NI (0x0)"
    ) in messages
    assert {(b.register, b.field) for b in refused.value.blockers} == {
        ("ID_AA64ISAR0_EL1", "ATOMIC")
    }


def test_host_with_unknown_masks_keeps_its_own_values() -> None:
    # a57 can change nothing; n1 can lower every field to a57's value, but cannot
    # raise the ones a57 has higher (AArch32 at EL1-EL3, a larger PARange).
    with pytest.raises(IncompatiblePoolError) as refused:
        baseline([n1(), a57(masks=None)])
    assert {(b.register, b.field) for b in refused.value.blockers} == {
        ("ID_AA64PFR0_EL1", "EL1"),
        ("ID_AA64PFR0_EL1", "EL2"),
        ("ID_AA64PFR0_EL1", "EL3"),
        ("ID_AA64MMFR0_EL1", "PARANGE"),
    }
    # Hosts without masks are named once up front by the command, not tagged field by field.
    assert all(
        "a57=" in b.message and "(not writable)" not in b.message for b in refused.value.blockers
    )


def test_host_with_unknown_masks_joins_when_the_others_can_meet_it() -> None:
    model = baseline([profile("low", NEOVERSE_N1_MIDR, CORTEX_A57_REGISTERS), a57(masks=None)])
    assert model.host_writes == {"low": (), "a57": ()}
    assert model.losses == ()


def test_exact_field_falls_back_to_its_safe_value() -> None:
    catalogue = load_catalogue()
    exact = next(
        f
        for r in catalogue.values()
        for f in r.fields
        if f.rule.value == "exact" and f.width == 4 and f.safe == 0
    )
    a = {exact.register: hex(exact.with_raw(0, 1))}
    b = {exact.register: hex(exact.with_raw(0, 2))}
    model = baseline([profile("a", NEOVERSE_N1_MIDR, a), profile("b", CORTEX_A57_MIDR, b)])
    assert exact.raw(model.id_registers[exact.register]) == 0


def test_higher_or_zero_field_keeps_zero() -> None:
    ctr = load_catalogue()["CTR_EL0"]
    cwg = ctr.field("CWG")
    a = {"CTR_EL0": hex(cwg.with_raw(0x8444C004, 4))}
    b = {"CTR_EL0": hex(cwg.with_raw(0x8444C004, 0))}
    c = {"CTR_EL0": hex(cwg.with_raw(0x8444C004, 5))}
    assert (
        cwg.raw(
            baseline(
                [profile("a", NEOVERSE_N1_MIDR, a), profile("c", CORTEX_A57_MIDR, c)]
            ).id_registers["CTR_EL0"]
        )
        == 5
    )
    assert (
        cwg.raw(
            baseline(
                [
                    profile("a", NEOVERSE_N1_MIDR, a),
                    profile("b", CORTEX_A57_MIDR, b),
                    profile("c", CORTEX_A76_MIDR, c),
                ]
            ).id_registers["CTR_EL0"]
        )
        == 0
    )


def test_res0_bits_must_be_equal() -> None:
    odd = dict(NEOVERSE_N1_REGISTERS, ID_AA64ISAR0_EL1="0x100010211121")  # bit 0 is RES0
    with pytest.raises(
        IncompatiblePoolError,
        match=r"bits 0x[0-9a-f]+ of ID_AA64ISAR0_EL1, which no field describes, "
        r"differ and must be equal: n1=0x0, odd=0x1",
    ):
        baseline([n1(), profile("odd", CORTEX_A76_MIDR, odd)])


def test_uncatalogued_register_is_kept_whole_when_equal_and_refused_when_not() -> None:
    extra = dict(NEOVERSE_N1_REGISTERS, IMPDEF_S3_0_C15_C0_0="0x1234")
    model = baseline([profile("a", NEOVERSE_N1_MIDR, extra), profile("b", CORTEX_A76_MIDR, extra)])
    assert model.id_registers["IMPDEF_S3_0_C15_C0_0"] == 0x1234
    differing = dict(extra, IMPDEF_S3_0_C15_C0_0="0x1235")
    with pytest.raises(
        IncompatiblePoolError,
        match="IMPDEF_S3_0_C15_C0_0 differ and must be equal: a=0x1234, b=0x1235",
    ):
        baseline([profile("a", NEOVERSE_N1_MIDR, extra), profile("b", CORTEX_A76_MIDR, differing)])


def test_register_missing_on_a_host_is_refused() -> None:
    fewer = {k: v for k, v in NEOVERSE_N1_REGISTERS.items() if k != "ID_AA64MMFR2_EL1"}
    with pytest.raises(IncompatiblePoolError, match="ID_AA64MMFR2_EL1 is not reported by b "):
        baseline([n1(), profile("b", CORTEX_A76_MIDR, fewer)])


def test_firmware_register_a_kernel_lacks_counts_as_offering_nothing() -> None:
    newer = n1().to_json()
    newer["firmware_registers"] = {"KVM_REG_ARM_VENDOR_HYP_BMAP_2": "0x3"}
    # No VMM lowers it: guests started on n1 carry 0x3, which a57 (offering nothing) refuses.
    with pytest.raises(IncompatiblePoolError) as refused:
        baseline([profile_from_json(newer, "new.json"), a57()])
    assert str(refused.value.blockers[0]) == (
        "KVM_REG_ARM_VENDOR_HYP_BMAP_2.DISCOVER_IMPL_CPUS: no VMM sets it, so a guest keeps "
        "the value of the host it starts on, and a57 refuses n1's IMP (0x1) (its own is NI (0x0))"
    )


def test_mixed_timer_frequencies_are_refused() -> None:
    with pytest.raises(
        IncompatiblePoolError,
        match=r"timer frequencies differ \(n1=25000000 Hz, a57=100000000 Hz\)",
    ):
        baseline([n1(), a57(timer_frequency_hz=100_000_000)])


def test_unknown_timer_frequency_is_noted_not_refused() -> None:
    model = baseline([n1(), a57(timer_frequency_hz=None)])
    assert model.timer_frequency_hz == 25_000_000
    assert model.notes == ("timer frequency unknown on a57: check it before they join",)


def test_target_list_is_deduplicated_and_sorted() -> None:
    twin = profile("n1-twin", NEOVERSE_N1_MIDR, NEOVERSE_N1_REGISTERS)
    model = baseline([n1(), a57(), twin])
    assert [t.midr for t in model.target_implementations] == [0x411FD070, 0x414FD0C1]


def test_host_writes_list_registers_whose_value_changes() -> None:
    model = baseline([n1(), a57()])
    assert "ID_AA64ISAR0_EL1" in model.host_writes["n1"]
    assert "ID_AA64ISAR0_EL1" not in model.host_writes["a57"]  # a57's value is the pool's


def test_identity_registers_are_left_to_the_target_list() -> None:
    regs = dict(NEOVERSE_N1_REGISTERS, MIDR_EL1=NEOVERSE_N1_MIDR)
    other = dict(CORTEX_A57_REGISTERS, MIDR_EL1=CORTEX_A57_MIDR)
    model = baseline(
        [profile("n1", NEOVERSE_N1_MIDR, regs), profile("a57", CORTEX_A57_MIDR, other)]
    )
    assert "MIDR_EL1" not in model.id_registers


def test_duplicate_host_names_and_empty_pools_are_bad_input() -> None:
    with pytest.raises(InputError, match="host name 'n1' is given by two profiles"):
        baseline([n1(), n1()])
    with pytest.raises(InputError, match="no host profiles given"):
        baseline([])


def test_model_round_trips_through_json() -> None:
    model = baseline([n1(), a57()])
    again = model_from_json(model.to_json(), "model.json")
    assert again.id_registers == model.id_registers
    assert again.target_implementations == model.target_implementations
    assert again.timer_frequency_hz == model.timer_frequency_hz
    assert again.losses == model.losses
    assert again.host_writes == model.host_writes
    assert again.hosts == ("n1", "a57")


def test_model_with_an_unknown_lost_field_is_refused() -> None:
    data = baseline([n1(), a57()]).to_json()
    data["losses"][0]["field"] = "NOPE"
    with pytest.raises(
        ProfileError, match=r"^m\.json: losses\[0\]: ID_AA64[A-Z0-9_]+\.NOPE is not"
    ):
        model_from_json(data, "m.json")


def test_hand_written_model_with_only_the_required_keys_is_valid() -> None:
    model = model_from_json(
        {
            "format": "qemu-errata/pool-model/1",
            "id_registers": {},
            "target_implementations": [{"midr": NEOVERSE_N1_MIDR}],
        },
        "hand.json",
    )
    assert model.target_implementations[0].revidr is None
    assert check(model, n1()).ok
    assert not check(model, a57()).ok


# check(): a host against a model.


def test_host_outside_the_target_list_is_named_decoded() -> None:
    model = baseline([n1()])
    result = check(model, a57())
    assert not result.ok
    assert any(
        p.message.startswith(
            "Arm Cortex-A57 r1p0 (MIDR 0x411fd070) (REVIDR 0x0) of CPUs 0-1 "
            "is not in the pool's target implementation list"
        )
        for p in result.problems
    )


def test_raised_lower_safe_field_is_refused_like_kvm() -> None:
    model = baseline([a57()])
    as_n1 = profile(
        "a57b", CORTEX_A57_MIDR, dict(CORTEX_A57_REGISTERS, ID_AA64ISAR0_EL1="0x1120")
    )  # no CRC32
    result = check(model, as_n1)
    assert [p.message for p in result.problems] == [
        "ID_AA64ISAR0_EL1.CRC32: the model presents IMP (0x1), the host has NI (0x0) "
        "(not safe under rule lower)"
    ]


def test_lowered_field_needs_the_host_to_allow_writing_it() -> None:
    model = baseline([n1(), a57()])
    stiff = n1(masks=None)
    result = check(model, stiff)
    assert not result.ok
    assert all("not writable on this host" in p.message for p in result.problems)


def test_timer_frequency_mismatch_fails_check() -> None:
    model = baseline([n1()])
    result = check(model, n1(timer_frequency_hz=1_000_000_000))
    assert [p.message for p in result.problems] == [
        "timer frequency 1000000000 Hz differs from the pool's 25000000 Hz"
    ]
