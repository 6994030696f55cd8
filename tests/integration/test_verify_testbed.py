"""On the test bed: verify never vouches for a guest it did not compare.

A plain ``-cpu neoverse-n1`` libvirt guest (started paused) that never got
the n1+a76 model must be reported as differing in SSBS and PARANGE (the
catalogue's spelling of fields, as baseline says it; arguments keep the VMM's).
"""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from support.cli import run_cli
from support.hosts import NEOVERSE_N1_MIDR

from qemu_errata.core.implementations import Implementation
from qemu_errata.core.profile import HostProfile
from qemu_errata.testbed.bed import TestBed, guest_xml

pytestmark = pytest.mark.root

N1_HOST = HostProfile(
    host="n1",
    implementations=(Implementation(int(NEOVERSE_N1_MIDR, 16), 0, None, (0,)),),
    id_registers={},
    writable_masks=None,
    timer_frequency_hz=None,
)


def test_plain_n1_guest_differs_from_an_n1_a76_model(testbed: TestBed, tmp_path: Path) -> None:
    model = tmp_path / "n1-a76.json"
    made = run_cli("baseline", "kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76", "-o", model)
    assert made.returncode == 0, made.stderr
    (host,) = testbed.start_hosts([N1_HOST])
    domain = host.define_guest(guest_xml("plain-n1", "neoverse-n1"))
    domain.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
    result = run_cli("verify", model, "--connect", host.uri, "--domain", "plain-n1")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Differences from the pool model:"
    differences = len(lines[1 : lines.index("Not checked:")])
    assert lines[-1].startswith(
        f"The guest differs from the pool model: {differences} differences (above); "
    )
    assert "  ID_AA64PFR1_EL1.SSBS: the model sets IMP (0x1), the guest has SSBS2 (0x2)" in lines
    assert (
        "  ID_AA64MMFR0_EL1.PARANGE: the model sets '40' (0x2), the guest has '48' (0x5)" in lines
    )
    assert "Not checked:" in lines
    assert domain.info()[0] == libvirt.VIR_DOMAIN_PAUSED


def test_verify_leaves_a_running_guest_running(testbed: TestBed, tmp_path: Path) -> None:
    model = tmp_path / "n1.json"
    made = run_cli("baseline", "qemu-neoverse-n1", "-o", model)
    assert made.returncode == 0, made.stderr
    (host,) = testbed.start_hosts([N1_HOST])
    domain = host.define_guest(guest_xml("running-n1", "neoverse-n1"))
    domain.create()
    result = run_cli("verify", model, "--connect", host.uri, "--domain", "running-n1", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    assert '"ok": false' in result.stdout
    assert domain.info()[0] == libvirt.VIR_DOMAIN_RUNNING
