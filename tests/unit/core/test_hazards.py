"""Hazards: what a pool's target list or pinned MIDR takes from guests on hosts that need it.

The kernel facts pinned here (facts file, section 9): since Linux 6.15 the MIDR-list
helpers (``is_midr_in_range_list()``) answer "yes" when ANY target implementation
matches, and the Spectre-v2, Spectre-v4, Spectre-BHB and KPTI safe lists are read with
them; a guest older than 6.15 reads the one MIDR it sees (the pinned one, when the model
pins it). Seen on a real Debian 7.2 guest on Neoverse-N1 given {Neoverse-N1, Cortex-A53}:
no Spectre-v4, no Spectre-BHB.
"""

from __future__ import annotations

from qemu_errata.core.board import guest_board
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.errata import ErrataTable, known_kernels, load_errata_table
from qemu_errata.core.errata.hazards import (
    FORCED_OFF,
    LOST_MITIGATION,
    LOST_WORKAROUND,
    PINNED_MIDR,
    SAFE_LIST,
    Hazard,
    accepting,
    hazard_blockers,
    hosts_of,
    model_hazards,
    pool_hazards,
    unaccepted,
)
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.pool import Reason, baseline, pin_midr
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace

N1 = TargetImplementation(0x414FD0C1, 0x0, 0x0)  # Arm Neoverse-N1 r4p1
A53 = TargetImplementation(0x410FD034, 0x0, 0x0)  # Arm Cortex-A53 r0p4: on the safe lists
A57 = TargetImplementation(0x411FD070, 0x0, 0x0)  # Arm Cortex-A57 r1p0: on the KPTI safe list
A76 = TargetImplementation(0x414FD0B1, 0x0, 0x0)  # Arm Cortex-A76 r4p1
A75 = TargetImplementation(0x413FD0A1, 0x0, 0x0)  # Arm Cortex-A75 r3p1: Meltdown, no safe list


def n1_profile() -> HostProfile:
    return load_embedded_profile("kvm-7.2-neoverse-n1")


def like_n1(host: str, target: TargetImplementation) -> HostProfile:
    """A host with Neoverse-N1's registers and another CPU implementation."""
    profile = n1_profile()
    implementation = replace(profile.implementations[0], midr=target.midr)
    return replace(profile, host=host, implementations=(implementation,))


def registers(profile: HostProfile) -> dict[str, int]:
    """What a pool of such hosts shows its guests: the host's registers, MIDR/REVIDR not
    pinned (each host's own)."""
    shown = {**profile.id_registers, **profile.firmware_registers}
    return {name: value for name, value in shown.items() if name not in ("MIDR_EL1", "REVIDR_EL1")}


def tables(series: str) -> list[ErrataTable]:
    return [load_errata_table(r) for r in known_kernels() if r.startswith(f"{series}.")]


KPTI = "Kernel page table isolation (KPTI)"


def by_name(hazards: tuple[Hazard, ...]) -> dict[str, Hazard]:
    return {h.name: h for h in hazards}


def test_a_safe_listed_cortex_a53_takes_spectre_v4_and_bhb_from_neoverse_n1() -> None:
    # Neoverse-N1 alone: Spectre-v4 by its SSBS, Spectre-BHB by the loop list (24); beside a
    # Cortex-A53 both safe lists match ANY listed CPU and guests of 7.2 and 7.3 skip both.
    hazards = by_name(pool_hazards([A53, N1], registers(n1_profile())))
    assert sorted(hazards) == ["Spectre-BHB", "Spectre-v4"]
    for hazard in hazards.values():
        assert (hazard.kind, hazard.cause) == (LOST_MITIGATION, SAFE_LIST)
        assert hazard.needed_on == (N1,)  # never the safe-listed CPU itself
        assert hazard.because_of == (A53,)
        assert hazard.guest_kernels == ("7.2", "7.3")
    assert hazards["Spectre-BHB"].describe() == (
        "Spectre-BHB LOST on Arm Neoverse-N1 r4p1: Arm Cortex-A53 r0p4 is on the kernel's "
        "safe list (Linux 7.2, 7.3 guests skip it on every host)"
    )


def test_guests_older_than_6_15_ignore_the_list_and_lose_nothing_to_it() -> None:
    assert pool_hazards([A53, N1], registers(n1_profile()), tables("6.12")) == ()


def test_cpus_on_no_safe_list_lose_nothing() -> None:
    # Cortex-A76 is on the Spectre-BHB loop list like Neoverse-N1: the list only adds.
    assert pool_hazards([A76, N1], registers(n1_profile())) == ()


def test_kpti_hidden_by_the_pool_is_not_lost_on_qemus_board() -> None:
    # A pool with a Cortex-A57 hides CSV3: with the A57 listed a guest would skip KPTI for
    # Meltdown, but on QEMU's virt board the KASLR seed forces KPTI on for a CPU without E0PD
    # (arm64_kernel_unmapped_at_el0), so a guest on the Neoverse-N1 keeps it; N1's own
    # ID_AA64PFR0_EL1.CSV3 says it is not affected either way.
    csv3 = load_catalogue().get("ID_AA64PFR0_EL1").field("CSV3")  # type: ignore[union-attr]
    seen = registers(n1_profile())
    seen["ID_AA64PFR0_EL1"] = csv3.with_raw(seen["ID_AA64PFR0_EL1"], 0)
    judged_on_the_model = by_name(pool_hazards([A57, N1], seen))
    assert "Kernel page table isolation (KPTI)" not in judged_on_the_model
    n1 = like_n1("n1", N1)
    assert pool_hazards([A57, N1], seen, hosts={N1: [n1]}) == ()
    # Without a profile, the hook counts only what a list or a field shows (evident_only).
    assert pool_hazards([A57, N1], seen, evident_only=True) == ()


def test_nokaslr_on_the_guest_command_line_makes_the_kpti_safe_list_take_kpti() -> None:
    # Without KASLR nothing forces KPTI on (unmap_kernel_at_el0): a Cortex-A75 (Meltdown, on
    # no safe list, no CSV3) keeps it alone and loses it beside the KPTI-safe Cortex-A57.
    csv3 = load_catalogue().get("ID_AA64PFR0_EL1").field("CSV3")  # type: ignore[union-attr]
    seen = registers(n1_profile())
    seen["ID_AA64PFR0_EL1"] = csv3.with_raw(seen["ID_AA64PFR0_EL1"], 0)
    assert KPTI not in by_name(pool_hazards([A57, A75], seen))
    hazards = by_name(pool_hazards([A57, A75], seen, board=guest_board("nokaslr")))
    assert (hazards[KPTI].needed_on, hazards[KPTI].because_of) == ((A75,), (A57,))


def test_a_listed_thunderx_forces_kpti_off_on_a_host_that_needs_it() -> None:
    # Cavium erratum 27456 (ThunderX CN88xx r0p0-r1p1): once a guest detects its workaround,
    # arm64_kernel_unmapped_at_el0() is false for every CPU: since 6.15 a ThunderX anywhere
    # in the list takes KPTI from the Cortex-A75 host (Meltdown, no CSV3), KASLR or not.
    thunderx = TargetImplementation(0x431F0A11, 0x0, 0x0)  # ThunderX CN88xx r1p1
    csv3 = load_catalogue().get("ID_AA64PFR0_EL1").field("CSV3")  # type: ignore[union-attr]
    seen = registers(n1_profile())
    seen["ID_AA64PFR0_EL1"] = csv3.with_raw(seen["ID_AA64PFR0_EL1"], 0)
    hazard = by_name(pool_hazards([thunderx, A75], seen))[KPTI]
    assert (hazard.needed_on, hazard.because_of, hazard.cause) == ((A75,), (thunderx,), FORCED_OFF)
    assert hazard.describe().startswith(
        f"{KPTI} LOST on Arm Cortex-A75 r3p1: an erratum of the listed "
    )
    assert "forces it off (Linux 7.2, 7.3 guests, on every host)" in hazard.describe()
    # Guests older than 6.15 read their own MIDR: nothing is forced off on the A75 there.
    assert KPTI not in by_name(pool_hazards([thunderx, A75], seen, tables("6.12")))


def test_a_pinned_thunderx_forces_kpti_off_for_older_guests_on_a_host_that_needs_it() -> None:
    # A guest older than 6.15 reads the pinned MIDR on every host: pinned to a ThunderX
    # CN88xx r1p1 it detects Cavium erratum 27456 on the Cortex-A75 host too, and
    # unmap_kernel_at_el0() then leaves KPTI off there, KASLR or not (the same erratum a
    # 6.15+ guest reads from the list).
    thunderx = TargetImplementation(0x431F0A11, 0x0, 0x0)  # ThunderX CN88xx r1p1
    csv3 = load_catalogue().get("ID_AA64PFR0_EL1").field("CSV3")  # type: ignore[union-attr]
    seen = registers(n1_profile())
    seen["ID_AA64PFR0_EL1"] = csv3.with_raw(seen["ID_AA64PFR0_EL1"], 0)
    seen["MIDR_EL1"] = thunderx.midr
    hazard = by_name(pool_hazards([thunderx, A75], seen, tables("6.12")))[KPTI]
    assert (hazard.needed_on, hazard.cause) == ((A75,), PINNED_MIDR)
    assert hazard.because_of[0].midr == thunderx.midr
    assert hazard.describe() == (
        f"{KPTI} LOST on Arm Cortex-A75 r3p1: the pinned MIDR Cavium ThunderX r1p1 brings "
        "Cavium erratum 27456, which forces it off for Linux 6.12 guests"
    )


def test_a_host_vulnerable_anyway_is_refused_for_the_words_its_guests_would_say() -> None:
    # A Cortex-A72 without CSV2 whose firmware answers NOT_AVAIL for ARCH_WORKAROUND_1: its
    # guests detect Spectre-v2 and stay Vulnerable (and so for Spectre-BHB). Beside a
    # safe-listed Cortex-A53 they say "Not affected" instead: nothing more is unmitigated,
    # but the guest's own words turn false; still refused, said as it is.
    a72 = TargetImplementation(0x410FD083, 0x0, 0x0)  # Arm Cortex-A72 r0p3
    csv2 = load_catalogue().get("ID_AA64PFR0_EL1").field("CSV2")  # type: ignore[union-attr]
    seen = registers(n1_profile())
    seen["ID_AA64PFR0_EL1"] = csv2.with_raw(seen["ID_AA64PFR0_EL1"], 0)
    seen["KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1"] = 0  # NOT_AVAIL
    hazards = by_name(pool_hazards([A53, a72], seen))
    assert sorted(hazards) == ["Spectre-BHB", "Spectre-v2", "Spectre-v4"]
    assert hazards["Spectre-v2"].describe() == (
        "Spectre-v2 LOST on Arm Cortex-A72 r0p3: Arm Cortex-A53 r0p4 is on the kernel's safe "
        "list (Linux 7.2, 7.3 guests skip it on every host); guests there are Vulnerable "
        "without it anyway, and say Not affected instead"
    )
    assert hazards["Spectre-BHB"].vulnerable_anyway  # not mitigated while v2 is vulnerable
    assert not hazards["Spectre-v4"].vulnerable_anyway  # SSBS mitigates it alone
    (blocker,) = hazard_blockers([hazards["Spectre-v2"]])
    assert "run without it" not in blocker.message
    assert blocker.message.endswith(
        "say Not affected instead: accept that by name with --accept-lost-mitigation Spectre-v2"
    )


def test_kpti_a_host_leaves_off_anyway_is_not_lost_to_a_listed_thunderx() -> None:
    # kpti=0 on the guest command line: the Cortex-A75's guests run without KPTI and say
    # Vulnerable with or without the ThunderX listed (erratum 27456 forces it off, and
    # the meltdown file still says Vulnerable): nothing is lost, nothing misreported.
    thunderx = TargetImplementation(0x431F0A11, 0x0, 0x0)  # ThunderX CN88xx r1p1
    csv3 = load_catalogue().get("ID_AA64PFR0_EL1").field("CSV3")  # type: ignore[union-attr]
    seen = registers(n1_profile())
    seen["ID_AA64PFR0_EL1"] = csv3.with_raw(seen["ID_AA64PFR0_EL1"], 0)
    assert KPTI in by_name(pool_hazards([thunderx, A75], seen))
    assert KPTI not in by_name(pool_hazards([thunderx, A75], seen, board=guest_board("kpti=0")))
    seen["MIDR_EL1"] = thunderx.midr  # pinned: the same for older guests
    older = tables("6.12")
    assert KPTI in by_name(pool_hazards([thunderx, A75], seen, older))
    assert KPTI not in by_name(
        pool_hazards([thunderx, A75], seen, older, board=guest_board("kpti=0"))
    )


def test_evident_only_keeps_what_an_affected_list_or_an_id_field_decides() -> None:
    hazards = by_name(pool_hazards([A53, N1], registers(n1_profile()), evident_only=True))
    assert sorted(hazards) == ["Spectre-BHB", "Spectre-v4"]


def test_a_pinned_midr_hides_errata_and_mitigations_from_older_guests() -> None:
    # A 6.12 guest reads the pinned MIDR (Cortex-A53) on the Neoverse-N1 host too: N1's
    # errata (3324349: SSBS not self-synchronising) and mitigations are not enabled there.
    hosts = [like_n1("n1", N1), like_n1("a53", A53)]
    model = pin_midr(baseline(hosts), hosts, A53.midr)
    pinned = [h for h in model_hazards(model, hosts_of(hosts)) if h.cause == PINNED_MIDR]
    names = {h.name: h for h in pinned}
    assert names["ARM erratum 3324349"].kind == LOST_WORKAROUND
    assert names["Spectre-BHB"].kind == LOST_MITIGATION
    for hazard in pinned:
        assert hazard.needed_on == (N1,)
        assert hazard.because_of[0].midr == A53.midr
        assert hazard.guest_kernels[0].startswith("6.12")
    assert "the pinned MIDR Arm Cortex-A53 r0p4 hides it from Linux 6.12" in (
        names["Spectre-v4"].describe()
    )


def test_guest_kernels_name_whole_series_or_runs_of_releases() -> None:
    later = [load_errata_table(r) for r in ("7.2.8", "7.2.9", "7.2.10", "7.3.4")]
    (hazard, _) = pool_hazards([A53, N1], registers(n1_profile()), later)
    # Not every known release judged: runs of consecutive known releases are named.
    assert hazard.guest_kernels == ("7.2.8-7.2.10", "7.3.4")


def test_acceptance_is_by_name_and_recorded_only_for_the_pools_own_hazards() -> None:
    hosts = [like_n1("n1", N1), like_n1("a53", A53)]
    model = accepting(baseline(hosts), ["spectre-bhb", "Spectre-v2"], hosts_of(hosts))
    assert model.accepted_lost_mitigations == ("Spectre-BHB",)
    left = unaccepted(model_hazards(model), model.accepted_lost_mitigations)
    assert [h.name for h in left] == ["Spectre-v4"]


def test_a_refusal_names_the_hosts_and_the_option_that_accepts() -> None:
    hosts = [like_n1("n1-07", N1), like_n1("a53-01", A53)]
    (blocker, _) = hazard_blockers(model_hazards(baseline(hosts)), hosts_of(hosts))
    assert blocker.reason is Reason.LOST_MITIGATION
    assert blocker.values == {
        "n1-07": "0x414fd0c1",
        "mitigation": "Spectre-v4",
        "cause": SAFE_LIST,
    }
    assert blocker.message.startswith("Spectre-v4 LOST on Arm Neoverse-N1 r4p1 (n1-07): ")
    assert blocker.message.endswith("accept that by name with --accept-lost-mitigation Spectre-v4")
