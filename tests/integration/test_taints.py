"""The taints libvirt records for a pool VM, as the README documents them.

libvirt marks a domain "tainted" in its log when it runs with something it does
not manage: our qemu:commandline arguments (custom-argv) and, once `verify
--connect` sends a QMP command through libvirt's monitor, custom-monitor.
"""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from support.cli import run_cli
from support.vmm_pool import three_host_pool

from qemu_errata.files import write_json
from qemu_errata.testbed.bed import Host, guest_xml

pytestmark = pytest.mark.root
DOMAIN = "tainted-vm"


def taints(n1_host: Host) -> set[str]:
    """The taint flags libvirt logged for the domain (its per-domain QEMU log)."""
    log = n1_host.cache_dir / "libvirt" / "qemu" / "log" / f"{DOMAIN}.log"
    return {
        line.rsplit(": ", 1)[1].strip()
        for line in log.read_text().splitlines()
        if " is tainted: " in line
    }


def test_a_pool_vm_is_tainted_custom_argv_and_verify_adds_custom_monitor(
    n1_host: Host, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.json"
    write_json(pool, three_host_pool().to_json())
    domain = n1_host.define_guest(guest_xml(DOMAIN, "cortex-a57"))
    try:
        applied = run_cli(
            "apply", pool, "--connect", n1_host.uri, "--domain", DOMAIN, "--qemu-cpu", "neoverse-n1"
        )
        assert applied.returncode == 0, applied.stderr
        domain.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        assert taints(n1_host) == {"custom-argv"}
        run_cli("verify", pool, "--connect", n1_host.uri, "--domain", DOMAIN)
        assert taints(n1_host) == {"custom-argv", "custom-monitor"}
    finally:
        if domain.isActive():
            domain.destroy()
        domain.undefine()
