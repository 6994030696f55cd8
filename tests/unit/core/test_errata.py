"""The errata table (data/errata.toml) and the kernel's matching rules (core/errata.py)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qemu_errata.core.errata import (
    ErrataTable,
    KernelView,
    added_by,
    kernel_view,
    load_errata_table,
    pool_errata,
)
from qemu_errata.core.errata import table as table_module
from qemu_errata.core.errata.schema import parse_facts, parse_words
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import load_cpu_names
from qemu_errata.errors import CatalogueError, UnknownKernelError

TABLE = load_errata_table()


def cpu(midr: int, revidr: int | None = 0) -> TargetImplementation:
    return TargetImplementation(midr, revidr, 0)


def midr(implementer: int, variant: int, part: int, revision: int) -> int:
    return implementer << 24 | variant << 20 | 0xF << 16 | part << 4 | revision


def enabled(
    cpus: Sequence[TargetImplementation],
    registers: dict[str, int] | None = None,
    table: ErrataTable = TABLE,
    at_el2: bool = False,
) -> set[str]:
    view = kernel_view(table, cpus, registers or {}, at_el2=at_el2)
    return {e.erratum.id for e in view.errata}


def affected(erratum_id: str, midr_value: int, revidr: int | None = 0) -> bool:
    (erratum,) = [e for e in TABLE.errata if e.id == erratum_id]
    return any(r.affects(midr_value, revidr) for r in erratum.affects)


# ---------------------------------------------------------------- the table against its sources


def test_every_implementation_the_table_names_has_a_name_in_cpus_json() -> None:
    names = load_cpu_names()
    ranges = [r for e in TABLE.errata for r in e.affects]
    ranges += [r for m in TABLE.mitigations for r in (*m.safe, *m.affected)]
    unnamed = {(r.implementer, r.part) for r in ranges if r.part_mask is None} - set(names.parts)
    assert unnamed == set()


def test_a_guest_log_line_maps_back_to_the_rows_that_share_it() -> None:
    tlbi = {r.id for r in TABLE.by_log("Broken broadcast TLBI completion")}
    assert {
        "Qualcomm Tech. erratum 1009",
        "ARM erratum 1286807",
        "ARM erratum 2441007",
        "ARM erratum 2441009",
        "ARM erratum 4118414",
        "ARM erratum 4193800",  # Cortex-A76 and Neoverse-N1's number for it
    } <= tlbi
    # Neoverse-N1's number for the erratum ARM64_ERRATUM_3194386 works around.
    assert "ARM erratum 3324349" in {
        r.id for r in TABLE.by_log("SSBS not fully self-synchronizing")
    }
    assert [r.id for r in TABLE.by_log("Spectre-BHB")] == ["Spectre-BHB"]


def test_a_capability_is_one_row_so_its_log_and_effect_are_written_once() -> None:
    text = resources.files("qemu_errata").joinpath("data/errata-effects.toml").read_text("utf-8")
    doubled = text + '\n[[workaround]]\ncapability = "ARM64_WORKAROUND_858921"\napplies = "guest"\n'
    doubled += 'effect = "said a second time"\n'
    with pytest.raises(
        CatalogueError,
        match=r"^errata-effects.toml: workaround\[44\] ARM64_WORKAROUND_858921, key 'capability': "
        r"'ARM64_WORKAROUND_858921' again \(first in errata-effects.toml: workaround\[6\] ",
    ):
        parse_words(doubled, "errata-effects.toml")


def test_the_vendors_the_issue_names_are_all_covered() -> None:
    vendors = {e.vendor for e in TABLE.errata}
    assert {
        "ARM",
        "Cavium",
        "Hisilicon",
        "Qualcomm Tech.",
        "NVIDIA",
        "Ampere",
        "Microsoft",
    } <= vendors


# ---------------------------------------------------------------- entries pinned to public ranges


def test_1418040_affects_cortex_a76_and_neoverse_n1_up_to_r3p1_only() -> None:
    assert affected("ARM erratum 1418040", midr(0x41, 3, 0xD0B, 1))
    assert not affected("ARM erratum 1418040", midr(0x41, 4, 0xD0B, 0))
    assert affected("ARM erratum 1418040", midr(0x41, 0, 0xD0C, 0))
    assert not affected("ARM erratum 1418040", 0x414FD0C1)  # Neoverse-N1 r4p1
    assert affected("ARM erratum 1418040", midr(0x51, 0xC, 0x804, 0xE))  # Kryo4xx Gold rcpe


def test_832075_affects_cortex_a57_r0p0_to_r1p2() -> None:
    assert affected("ARM erratum 832075", midr(0x41, 1, 0xD07, 2))
    assert not affected("ARM erratum 832075", midr(0x41, 1, 0xD07, 3))


def test_843419_is_fixed_on_cortex_a53_r0p4_by_revidr_bit_8_only() -> None:
    assert affected("ARM erratum 843419", midr(0x41, 0, 0xD03, 4), revidr=0)
    assert not affected("ARM erratum 843419", midr(0x41, 0, 0xD03, 4), revidr=0x100)
    assert affected("ARM erratum 843419", midr(0x41, 0, 0xD03, 3), revidr=0x100)
    assert affected(
        "ARM erratum 843419", midr(0x41, 0, 0xD03, 4), revidr=None
    )  # unknown: not fixed


def test_2658417_is_fixed_on_cortex_a510_r1p1_by_revidr_bit_25() -> None:
    assert affected("ARM erratum 2658417", midr(0x41, 1, 0xD46, 1), revidr=0)
    assert not affected("ARM erratum 2658417", midr(0x41, 1, 0xD46, 1), revidr=1 << 25)
    assert not affected("ARM erratum 2658417", midr(0x41, 1, 0xD46, 2))


def test_3194386_as_3324349_affects_every_version_of_neoverse_n1() -> None:
    assert affected("ARM erratum 3324349", midr(0x41, 0, 0xD0C, 0))
    assert affected("ARM erratum 3324349", midr(0x41, 0xF, 0xD0C, 0xF))
    assert not affected("ARM erratum 3324349", midr(0x41, 0, 0xD03, 0))  # Cortex-A53


def test_cavium_27456_affects_thunderx_pass_1_to_2_1_and_t81_pass_1_0() -> None:
    assert affected("Cavium erratum 27456", midr(0x43, 1, 0x0A1, 1))
    assert not affected("Cavium erratum 27456", midr(0x43, 1, 0x0A1, 2))
    assert affected("Cavium erratum 27456", midr(0x43, 0, 0x0A2, 0))
    assert not affected("Cavium erratum 27456", midr(0x43, 0, 0x0A2, 1))


def test_cavium_30115_reaches_thunderx_pass_2_2_and_t83_pass_1_0() -> None:
    assert affected("Cavium erratum 30115", midr(0x43, 1, 0x0A1, 2))
    assert affected("Cavium erratum 30115", midr(0x43, 0, 0x0A3, 0))
    assert not affected("Cavium erratum 30115", midr(0x43, 0, 0x0A3, 1))


def test_ampereone_ac03_cpu_38_affects_both_ampereone_parts_in_every_version() -> None:
    assert affected("Ampere erratum AC03_CPU_38", midr(0xC0, 0, 0xAC3, 0))
    assert affected("Ampere erratum AC03_CPU_38", midr(0xC0, 1, 0xAC4, 2))
    assert not affected("Ampere erratum AC04_CPU_23", midr(0xC0, 0, 0xAC3, 0))


def test_1286807_stops_at_kryo4xx_gold_rfpe() -> None:
    assert affected("ARM erratum 1286807", midr(0x51, 0xF, 0x804, 0xE))
    assert not affected("ARM erratum 1286807", midr(0x51, 0xF, 0x804, 0xF))
    assert affected("ARM erratum 1286807", midr(0x41, 3, 0xD0B, 0))
    assert not affected("ARM erratum 1286807", midr(0x41, 3, 0xD0B, 1))


def test_c1_pro_4193714_fixed_by_revidr_bit_0_and_needs_sme() -> None:
    c1_pro = midr(0x41, 1, 0xD8B, 2)
    assert affected("ARM erratum 4193714", c1_pro, revidr=0)
    assert not affected("ARM erratum 4193714", c1_pro, revidr=1)
    with_sme = {"ID_AA64PFR1_EL1": 1 << 24}
    assert "ARM erratum 4193714" in enabled([cpu(c1_pro)], with_sme)
    view = kernel_view(TABLE, [cpu(c1_pro)], {"ID_AA64PFR1_EL1": 0})
    assert [s.erratum.id for s in view.suppressed] == ["ARM erratum 4193714"]


def test_kryo_matches_by_part_family_only_on_its_own_hosts() -> None:
    kryo = cpu(midr(0x51, 0xA, 0x211, 1))
    pool = kernel_view(TABLE, [kryo, cpu(0x414FD0C1)], {})
    e1003 = [e for e in pool.errata if e.erratum.id == "Qualcomm Tech. erratum 1003"]
    assert e1003
    assert e1003[0].own_hosts_only
    falkor_v1 = kernel_view(TABLE, [cpu(midr(0x51, 0, 0x800, 0)), cpu(0x414FD0C1)], {})
    assert not next(e for e in falkor_v1.errata if e.erratum.id.endswith("1003")).own_hosts_only


# ---------------------------------------------------------------- guest rules


def test_a_guest_enables_an_erratum_when_any_target_is_affected() -> None:
    a57, n1 = cpu(0x411FD070), cpu(0x414FD0C1)
    assert "ARM erratum 832075" in enabled([n1, a57])
    assert "ARM erratum 832075" not in enabled([n1])


def test_hyp_only_errata_are_never_a_guests_but_are_a_hosts() -> None:
    a76 = cpu(midr(0x41, 3, 0xD0B, 0))
    assert "ARM erratum 1463225" not in enabled([a76])
    assert "ARM erratum 1463225" in enabled([a76], at_el2=True)


def test_an_id_field_the_model_lowers_decides_relevance() -> None:
    n1 = cpu(0x414FD0C1)
    assert "ARM erratum 1542419" in enabled([n1], {"CTR_EL0": 1 << 29})
    assert "ARM erratum 1542419" not in enabled([n1], {"CTR_EL0": 0})
    a510 = cpu(midr(0x41, 0, 0xD46, 0))
    (amu,) = [
        e
        for e in kernel_view(TABLE, [a510], {"ID_AA64PFR0_EL1": 0}).errata
        if e.erratum.id.endswith("2457168")
    ]
    assert amu.no_effect is not None
    assert "AMU" in amu.no_effect


def test_a_point_release_carries_what_debians_changelog_says_it_brought() -> None:
    # Cortex-A725 erratum 3821522 and the shared AMU capability came with 7.2.10 (and 6.12.113).
    a725, a510 = cpu(midr(0x41, 0, 0xD87, 1)), cpu(midr(0x41, 1, 0xD46, 1))
    assert "ARM erratum 3821522" in enabled([a725], table=load_errata_table("7.2.10"))
    assert "ARM erratum 3821522" not in enabled([a725], table=load_errata_table("7.2.9"))
    old = kernel_view(load_errata_table("7.2.9"), [a510], {}).expected_log()[0]
    new = kernel_view(load_errata_table("7.2.10"), [a510], {}).expected_log()[0]
    assert "ARM erratum 2457168" in old
    assert "Broken AMU AMEVCNTR01 (const counter)" in new


def test_spectre_bhb_loop_count_is_the_largest_a_target_needs_and_a_safe_target_wins() -> None:
    n1, v2, a53 = cpu(0x414FD0C1), cpu(0x410FD4F0), cpu(0x410FD034)

    def bhb(cpus: list[TargetImplementation]) -> tuple[str, int | None]:
        (verdict,) = [
            v for v in kernel_view(TABLE, cpus, {}).mitigations if v.mitigation.id == "Spectre-BHB"
        ]
        return verdict.state, verdict.loop

    assert bhb([n1]) == ("enabled", 24)
    assert bhb([n1, v2]) == ("enabled", 132)
    assert bhb([n1, a53]) == ("not needed", None)
    csv2_3 = {"ID_AA64PFR0_EL1": 3 << 56}
    (verdict,) = [
        v for v in kernel_view(TABLE, [n1], csv2_3).mitigations if v.mitigation.id == "Spectre-BHB"
    ]
    assert verdict.state == "not needed"


def test_pool_marginal_cost_and_older_guests() -> None:
    n1, a57 = cpu(0x414FD0C1), cpu(0x411FD070)
    pool = pool_errata(TABLE, [a57, n1], {})
    marginal = dict(pool.marginal)
    assert ("ARM erratum 832075",) in marginal[a57]
    assert ("Spectre-v3a",) in marginal[a57]
    assert ("ARM erratum 3324349",) in marginal[n1]
    older = dict(pool.older_guests)
    assert _ids(older[n1]) >= {"ARM erratum 3324349"}
    assert "ARM erratum 832075" not in _ids(older[n1])


def test_a_guest_older_than_6_15_gets_no_target_list_answer() -> None:
    pool = pool_errata(load_errata_table("6.12.117"), [cpu(0x414FD0C1)], {})
    assert pool.guest is None
    assert pool.marginal == ()
    assert len(pool.older_guests) == 1


def test_an_older_guest_reads_the_models_pinned_midr_on_every_host() -> None:
    n1, a57 = cpu(0x414FD0C1), cpu(0x411FD070)
    pool = pool_errata(TABLE, [a57, n1], {"MIDR_EL1": 0x414FD0C1, "REVIDR_EL1": 0})
    assert all("ARM erratum 832075" not in _ids(view) for _, view in pool.older_guests)


def test_an_older_guest_reads_its_hosts_own_revidr_beside_a_pinned_midr() -> None:
    # pin_midr pins MIDR_EL1 only: REVIDR_EL1 stays each host's (KVM's reset value), so on
    # a Cortex-A53 r0p4 host with REVIDR bit 8 set the pinned A53 MIDR still reads as fixed
    # for erratum 843419, as on that host without a pin.
    a53_fixed, n1 = cpu(0x410FD034, 0x100), cpu(0x414FD0C1)
    older = dict(pool_errata(TABLE, [a53_fixed, n1], {"MIDR_EL1": 0x410FD034}).older_guests)
    assert "ARM erratum 843419" not in _ids(older[a53_fixed])
    assert "ARM erratum 843419" in _ids(older[n1])  # REVIDR 0 on the Neoverse-N1 host


def _ids(view: KernelView) -> set[str]:
    return {e.erratum.id for e in view.errata}


# ---------------------------------------------------------------- property


def _table_midrs(table: ErrataTable) -> list[int]:
    ranges = [r for e in table.errata for r in e.affects]
    return sorted({midr(r.implementer, r.rv_min >> 20, r.part, r.rv_min & 0xF) for r in ranges})


MIDRS = _table_midrs(TABLE)
CPUS = st.builds(
    lambda m, v, r, revidr: cpu(m & ~0x00F0000F | v << 20 | r, revidr),
    st.sampled_from(MIDRS),
    st.integers(0, 4),
    st.integers(0, 4),
    st.sampled_from([0, 1, 0x100, 1 << 25, None]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(CPUS, max_size=6), CPUS)
def test_adding_a_target_never_removes_an_erratum(
    targets: list[TargetImplementation], extra: TargetImplementation
) -> None:
    registers = {"CTR_EL0": 1 << 29, "ID_AA64PFR1_EL1": 1 << 24}
    assert enabled(targets, registers) <= enabled([*targets, extra], registers)


# ---------------------------------------------------------------- bad data


def test_an_unknown_guest_kernel_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownKernelError, match=r"'7\.2\.5' is not known; known: .*7\.2\.6"):
        load_errata_table("7.2.5")


def test_spectre_v2_and_v4_follow_the_models_firmware_answer_when_no_list_decides() -> None:
    """proton-pack.c: the capability is detected unless firmware answers NOT_REQUIRED, and only
    an AVAIL answer (SMCCC SUCCESS) mitigates it: NOT_AVAIL leaves the guest Vulnerable."""
    a76 = cpu(midr(0x41, 3, 0xD0B, 0))

    def state(registers: dict[str, int], mitigation: str) -> str:
        view = kernel_view(TABLE, [a76], registers)
        return next(v.state for v in view.mitigations if v.mitigation.id == mitigation)

    assert state({}, "Spectre-v2") == "firmware"
    assert state({"KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1": 2}, "Spectre-v2") == "not needed"
    assert state({"KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1": 0}, "Spectre-v2") == "vulnerable"
    assert state({"KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1": 1}, "Spectre-v2") == "enabled"
    assert state({"KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2": 0}, "Spectre-v4") == "vulnerable"
    assert state({"KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2": 3}, "Spectre-v4") == "not needed"
    with_ssbs = {"ID_AA64PFR1_EL1": 1 << 4, "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_2": 3}
    assert state(with_ssbs, "Spectre-v4") == "enabled"  # SSBS mitigates before firmware is asked
    assert state(
        {"ID_AA64PFR0_EL1": 1 << 56, "KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1": 0}, "Spectre-v2"
    ) == ("not needed")


def test_errata_sharing_a_capability_are_one_workaround_and_cost_nothing_when_kept() -> None:
    a76_r3p0, n1 = cpu(midr(0x41, 3, 0xD0B, 0)), cpu(0x414FD0C1)
    pool = dict(pool_errata(TABLE, [a76_r3p0, n1], {}).marginal)
    # 1286807 is A76's alone, but N1's 4118414 already repeats every TLBI (same capability).
    # silicon-errata.rst files 1188873 under ARM64_ERRATUM_1418040 too: one workaround.
    assert pool[a76_r3p0] == (("ARM erratum 1188873", "ARM erratum 1418040"),)
    a53_r0p0 = cpu(midr(0x41, 0, 0xD03, 0))
    (clean_cache,) = [w for w in added_by(TABLE, [n1], a53_r0p0, {}) if "ARM erratum 826319" in w]
    assert clean_cache == (
        "ARM erratum 826319",
        "ARM erratum 827319",
        "ARM erratum 824069",
        "ARM erratum 819472",
    )


def test_the_expected_log_of_a_7_2_guest_on_neoverse_n1_names_the_shared_descriptions() -> None:
    # A Linux 7.2 guest on QEMU's neoverse-n1 logs these (the project's facts file, section 5).
    n1_registers = {"ID_AA64PFR0_EL1": 0x1100000011110112, "ID_AA64PFR1_EL1": 0x20}
    certain, possible = kernel_view(TABLE, [cpu(0x414FD0C1)], n1_registers).expected_log()
    assert "Broken broadcast TLBI completion" in certain
    assert "SSBS not fully self-synchronizing" in certain
    assert "Spectre-BHB" in certain
    assert "Spectre-v4" in certain
    assert "Spectre-v2" not in certain + possible  # CSV2 says unaffected
    assert all(TABLE.by_log(line) for line in certain)


def test_errata_matched_on_their_own_hosts_are_logged_only_by_some_guests() -> None:
    pool = [cpu(midr(0x51, 0xA, 0x211, 1)), cpu(0x414FD0C1)]
    certain, some = kernel_view(TABLE, pool, {}).expected_log()
    assert "Qualcomm Technologies Falkor/Kryo erratum 1003" in some
    assert "Qualcomm Technologies Falkor/Kryo erratum 1003" not in certain
    assert "Broken broadcast TLBI completion" in certain  # Neoverse-N1 brings it to every guest


def test_guests_before_7_2_9_count_a_revidr_fixed_part_beside_another_listed_part() -> None:
    # 6.15 to 7.2.8 compared a MIDR_FIXED range with the whole list, then the fix bits with
    # each listed CPU; 7.2.9 ("errata: match the target implementation CPU's own MIDR")
    # compares each listed CPU with its own MIDR and REVIDR.
    fixed_a53, n1 = cpu(midr(0x41, 0, 0xD03, 4), revidr=0x100), cpu(0x414FD0C1)
    assert "ARM erratum 843419" in enabled([fixed_a53, n1], table=load_errata_table("7.2.8"))
    assert "ARM erratum 843419" not in enabled([fixed_a53, n1], table=load_errata_table("7.2.9"))
    assert "ARM erratum 843419" not in enabled([fixed_a53], table=load_errata_table("7.2.8"))


def test_a_workaround_debian_builds_without_is_logged_only_by_some_guests() -> None:
    # ARM64_ERRATUM_1542419 is "is not set" in every Debian arm64 config of 6.12, 7.2, 7.3.
    n1 = cpu(0x414FD0C1)
    certain, some = kernel_view(TABLE, [n1], {}).expected_log()
    line = "ARM erratum 1542419 (kernel portion)"
    assert line in some
    assert line not in certain
    (left_out,) = [
        e for e in kernel_view(TABLE, [n1], {}).errata if e.erratum.id.endswith("1542419")
    ]
    assert left_out.only_some_kernels is not None
    assert "arm64" in left_out.only_some_kernels


def test_an_unknown_key_in_the_derived_table_is_refused_naming_file_row_and_key() -> None:
    text = (resources.files("qemu_errata").joinpath("data/errata.toml").read_text("utf-8")).replace(
        'log = "ARM erratum 832075"', 'log = "ARM erratum 832075"\nsince = "4.0"'
    )
    with pytest.raises(
        CatalogueError,
        match=r"^errata.toml: workaround\[2\] ARM64_WORKAROUND_DEVICE_LOAD_ACQUIRE, key 'since': "
        "not a key of this table",
    ):
        parse_facts(text, "errata.toml")


def test_kernel_specs_name_a_series_or_point_releases_of_one_series() -> None:
    carries = table_module._carries
    assert carries(["7.2"], (7, 2, 13))
    assert not carries(["7.2"], (7, 3, 4))
    assert carries(["7.2.10-"], (7, 2, 10))
    assert not carries(["7.2.10-"], (7, 2, 9))
    assert not carries(["7.2.10-"], (7, 3, 1))  # "from" stays inside its series
    assert carries(["7.2-7.2.9"], (7, 2, 6))
    assert not carries(["7.2-7.2.9"], (7, 2, 10))
    assert carries(["6.12-6.12.111", "7.3"], (7, 3, 1))
