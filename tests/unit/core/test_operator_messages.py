"""What baseline says when a pool is refused, and how values and models read."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from qemu_errata.core.catalogue import load_catalogue, parse_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import baseline, largest_pools
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.core.words import plural
from qemu_errata.errors import CatalogueError, IncompatiblePoolError
from qemu_errata.reports.show import model_lines, profile_lines


def _with_field(
    profile: HostProfile, host: str, register: str, field: str, raw: int
) -> HostProfile:
    catalogue = load_catalogue()
    value = catalogue[register].field(field).with_raw(profile.id_registers[register], raw)
    return replace(profile, host=host, id_registers={**profile.id_registers, register: value})


def test_a_writable_field_kvm_refuses_to_lower_says_why() -> None:
    n1 = load_embedded_profile("kvm-6.12-neoverse-n1")
    armv7_debug = _with_field(n1, "old-debug", "ID_DFR0_EL1", "CopDbg", 5)
    with pytest.raises(IncompatiblePoolError) as refused:
        baseline([n1, armv7_debug])
    (message,) = [b.message for b in refused.value.blockers if "CopDbg" in b.message]
    assert (
        "neoverse-n1-linux-6.12=Debugv8p2 (0x8) (writable, but KVM refuses a debug "
        "architecture below Armv8: not Armv7p1 (0x5))"
    ) in message


def test_fields_of_hosts_without_masks_are_not_tagged_one_by_one() -> None:
    with pytest.raises(IncompatiblePoolError) as refused:
        baseline([load_embedded_profile("qemu-neoverse-n1"), load_embedded_profile("qemu-a64fx")])
    assert refused.value.blockers
    assert not [b for b in refused.value.blockers if "(not writable)" in b.message]


def test_a_sysfs_only_profile_is_one_blocker() -> None:
    n1 = load_embedded_profile("kvm-6.12-neoverse-n1")
    types_only = replace(n1, host="sysfs-host", id_registers={})
    with pytest.raises(IncompatiblePoolError) as refused:
        baseline([n1, types_only])
    (blocker,) = refused.value.blockers
    assert blocker.message.startswith("sysfs-host: CPU types only")


def _forms_pool(profiles: Sequence[HostProfile]) -> bool:
    try:
        baseline(profiles)
    except IncompatiblePoolError:
        return False
    return True


def test_largest_pools_name_the_hosts_that_do_pool() -> None:
    names = ("kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a72", "kvm-6.12-cortex-a76")
    profiles = [load_embedded_profile(n) for n in names]
    assert largest_pools(profiles, _forms_pool) == [
        ("neoverse-n1-linux-6.12", "cortex-a76-linux-6.12")
    ]


def test_no_two_incompatible_hosts_pool() -> None:
    names = ("qemu-neoverse-n1", "qemu-cortex-a57")
    assert largest_pools([load_embedded_profile(n) for n in names], _forms_pool) == []


def test_value_names_that_read_as_numbers_are_quoted() -> None:
    parange = load_catalogue()["ID_AA64MMFR0_EL1"].field("PARANGE")
    assert parange.describe(5) == "'48' (0x5)"
    assert load_catalogue()["ID_AA64PFR0_EL1"].field("SVE").describe(1) == "IMP (0x1)"
    assert parange.describe(0xE) == "0xe"


def test_refused_values_need_a_reason_in_the_catalogue() -> None:
    text = """
format = "qemu-errata/register-catalogue/2"
source = "test"
[[register]]
name = "ID_DFR0_EL1"
encoding = [3, 0, 0, 1, 2]
title = "t"
kind = "feature"
res0 = [[63, 4]]
  [[register.field]]
  name = "CopDbg"
  bits = [3, 0]
  rule = "lower"
  refused = [0]
"""
    with pytest.raises(CatalogueError, match="CopDbg: refused values need 'refused_because'"):
        parse_catalogue(text, "test")


def test_plural() -> None:
    assert (plural(1, "host"), plural(2, "host"), plural(0, "field")) == (
        "1 host",
        "2 hosts",
        "0 fields",
    )


def test_profile_reads_as_cpu_names_and_value_names() -> None:
    lines = profile_lines(load_embedded_profile("kvm-7.2-cortex-a76"), load_catalogue())
    assert lines[0] == (
        "Host profile of cortex-a76-linux-7.2 (probed with --backend kvm, 7.2.13+deb14-arm64)"
    )
    assert "  0: Arm Cortex-A76 r4p1 (MIDR 0x414fd0b1), REVIDR 0x0, AIDR 0x0" in lines
    assert "    PARANGE: '40' (0x2) (writable)" in lines


def test_model_reads_with_targets_and_losses() -> None:
    model = baseline(
        [load_embedded_profile(n) for n in ("kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76")]
    )
    lines = model_lines(model, load_catalogue())
    assert lines[0] == "Pool model of neoverse-n1-linux-6.12, cortex-a76-linux-6.12"
    assert "  Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1), REVIDR 0x0, AIDR 0x0" in lines
    assert "What the pool loses (2 fields):" in lines
