"""apply --dry-run and unapply against a real libvirt session daemon (issue 16)."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from support.cli import run_cli
from support.hosts import NEOVERSE_N1_MIDR
from support.vmm_pool import three_host_pool

from qemu_errata.core.implementations import Implementation
from qemu_errata.core.profile import HostProfile
from qemu_errata.files import write_json
from qemu_errata.testbed.bed import Host, TestBed, guest_xml

pytestmark = pytest.mark.root
DOMAIN = "unapply-vm"
INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE


@pytest.fixture(scope="module")
def host(module_testbed: TestBed) -> Host:
    profile = HostProfile(
        host="n1",
        implementations=(Implementation(int(NEOVERSE_N1_MIDR, 16), 0, None, (0, 1)),),
        id_registers={},
        writable_masks=None,
        timer_frequency_hz=None,
    )
    (started,) = module_testbed.start_hosts([profile])
    return started


def test_dry_run_changes_nothing_and_unapply_gives_the_domain_back(
    host: Host, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.json"
    write_json(pool, three_host_pool().to_json())
    domain = host.define_guest(guest_xml(DOMAIN, "cortex-a57"))
    target = ("--connect", host.uri, "--domain", DOMAIN)
    try:
        original = domain.XMLDesc(INACTIVE)
        dry = run_cli("apply", pool, *target, "--qemu-cpu", "neoverse-n1", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        lines = dry.stdout.splitlines()
        assert lines[:2] == [f"--- {DOMAIN} (defined)", f"+++ {DOMAIN} (with the pool model)"]
        assert '+    <model fallback="forbid">neoverse-n1</model>' in lines
        assert any(line.startswith("+") and "qemu-errata:pool" in line for line in lines)
        assert domain.XMLDesc(INACTIVE) == original

        for _ in range(2):  # the second apply must keep the domain's own <cpu>, not ours
            applied = run_cli("apply", pool, *target, "--qemu-cpu", "neoverse-n1")
            assert applied.returncode == 0, applied.stderr
        assert "neoverse-n1" in domain.XMLDesc(INACTIVE)

        dry = run_cli("unapply", *target, "--dry-run")
        assert dry.stdout.splitlines()[1] == f"+++ {DOMAIN} (without the pool model)"
        assert '-    <model fallback="forbid">neoverse-n1</model>' in dry.stdout
        undone = run_cli("unapply", *target)
        assert undone.returncode == 0, undone.stderr
        assert undone.stdout == (
            f"Domain {DOMAIN} redefined without the pool model, with its own <cpu> back.\n"
        )
        assert domain.XMLDesc(INACTIVE) == original

        again = run_cli("unapply", *target)
        assert (again.returncode, again.stderr) == (
            2,
            f"qemu-errata: {host.uri}: domain {DOMAIN}: the domain carries no pool model\n",
        )
    finally:
        domain.undefine()
