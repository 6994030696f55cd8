"""The hook's host-profile check applies KVM's ICC_CTLR_EL1 rules."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from libvirt_hooks.domain import Pool, Target
from libvirt_hooks.hostcpus import HostImplementation
from libvirt_hooks.profilecheck import profile_problems
from qemu_errata.core.embedded import load_embedded_profile

N1 = 0x414FD0C1


def pool(icc: int) -> Pool:
    profile = load_embedded_profile("kvm-7.2-neoverse-n1")
    return Pool(
        [Target(N1, None, None)],
        profile.timer_frequency_hz,
        {
            "id_registers": dict(profile.id_registers),
            "firmware_registers": dict(profile.firmware_registers),
            "gic_registers": {"ICC_CTLR_EL1": icc},
        },
    )


def write_profile(path: Path, icc: int) -> str:
    profile = load_embedded_profile("kvm-7.2-neoverse-n1")
    profile = dataclasses.replace(profile, gic_registers={"ICC_CTLR_EL1": icc})
    path.write_text(json.dumps(profile.to_json()))
    return str(path)


def test_a_destination_with_fewer_priority_bits_is_refused(tmp_path: Path) -> None:
    here = write_profile(tmp_path / "host.json", 0x8B00)
    problems = profile_problems(pool(0x8C00), here, [HostImplementation(N1, 0, (0,))], [])
    assert len(problems) == 1
    assert "ICC_CTLR_EL1.PRIbits: the model presents 0x4, the host has 0x3" in problems[0]


def test_a_destination_whose_seis_differs_is_refused_and_an_equal_one_allowed(
    tmp_path: Path,
) -> None:
    cpus = [HostImplementation(N1, 0, (0,))]
    differing = write_profile(tmp_path / "seis.json", 0xCC00)
    assert "ICC_CTLR_EL1.SEIS" in profile_problems(pool(0x8C00), differing, cpus, [])[0]
    equal = write_profile(tmp_path / "equal.json", 0x8C00)
    assert profile_problems(pool(0x8C00), equal, cpus, []) == []


def test_a_destination_with_more_priority_bits_than_the_pool_is_refused(tmp_path: Path) -> None:
    # Its own guests would carry 7 priority bits that the pool's hosts refuse.
    here = write_profile(tmp_path / "host.json", 0x8E00)
    problems = profile_problems(pool(0x8C00), here, [HostImplementation(N1, 0, (0,))], [])
    assert len(problems) == 1
    assert "ICC_CTLR_EL1.PRIbits: no VMM sets it" in problems[0]
