"""apply --dry-run and unapply against a real libvirt session daemon."""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from support.cli import run_cli
from support.vmm_pool import three_host_pool

from qemu_errata.files import write_json
from qemu_errata.testbed.bed import Host, guest_xml

pytestmark = pytest.mark.root
DOMAIN = "unapply-vm"
INACTIVE = libvirt.VIR_DOMAIN_XML_INACTIVE


def test_dry_run_changes_nothing_and_unapply_gives_the_domain_back(
    n1_host: Host, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.json"
    write_json(pool, three_host_pool().to_json())
    domain = n1_host.define_guest(guest_xml(DOMAIN, "cortex-a57"))
    target = ("--connect", n1_host.uri, "--domain", DOMAIN)
    try:
        original = domain.XMLDesc(INACTIVE)
        dry = run_cli("apply", pool, *target, "--qemu-cpu", "neoverse-n1", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        lines = dry.stdout.splitlines()
        assert lines[:2] == [f"--- {DOMAIN} (defined)", f"+++ {DOMAIN} (with the pool model)"]
        assert '+    <model fallback="forbid">neoverse-n1</model>' in lines
        assert any(line.startswith("+") and "qemu-errata:pool" in line for line in lines)
        assert dry.stdout.endswith("\n </domain>\n")  # the last line is whole too
        assert domain.XMLDesc(INACTIVE) == original

        applied = run_cli("apply", pool, *target, "--qemu-cpu", "neoverse-n1")
        assert applied.returncode == 0, applied.stderr
        applied_xml = domain.XMLDesc(INACTIVE)
        assert "neoverse-n1" in applied_xml
        # Applying again must keep the domain's own <cpu>, not ours, and change nothing.
        again = run_cli("apply", pool, *target, "--qemu-cpu", "neoverse-n1")
        assert (again.returncode, again.stdout) == (
            0,
            f"Domain {DOMAIN} already presents this pool model: definition unchanged.\n",
        )
        assert domain.XMLDesc(INACTIVE) == applied_xml

        dry = run_cli("unapply", *target, "--dry-run")
        assert dry.stdout.splitlines()[1] == f"+++ {DOMAIN} (without the pool model)"
        assert '-    <model fallback="forbid">neoverse-n1</model>' in dry.stdout
        undone = run_cli("unapply", *target)
        assert undone.returncode == 0, undone.stderr
        assert undone.stdout == (
            f"Domain {DOMAIN} redefined without the pool model, with its own <cpu> back.\n"
        )
        assert domain.XMLDesc(INACTIVE) == original

        # unapply twice is unapply once: libvirt's definition is not touched again.
        again = run_cli("unapply", *target)
        assert (again.returncode, again.stdout, again.stderr) == (
            0,
            f"Domain {DOMAIN} carries no pool model: definition unchanged.\n",
            "",
        )
        assert domain.XMLDesc(INACTIVE) == original
    finally:
        domain.undefine()


def test_apply_takes_a_cpu_model_this_machines_qemu_lists_as_render_does(
    n1_host: Host, tmp_path: Path
) -> None:
    """qemu-system-aarch64 -cpu help lists cortex-a53; no qemu-cortex-a53 profile is shipped."""
    pool = tmp_path / "pool.json"
    write_json(pool, three_host_pool().to_json())
    domain = n1_host.define_guest(guest_xml(DOMAIN, "cortex-a57"))
    target = ("--connect", n1_host.uri, "--domain", DOMAIN, "--dry-run")
    try:
        dry = run_cli("apply", pool, *target, "--qemu-cpu", "cortex-a53")
        assert dry.returncode == 0, dry.stderr
        assert '+    <model fallback="forbid">cortex-a53</model>' in dry.stdout.splitlines()
        refused = run_cli("apply", pool, *target, "--qemu-cpu", "cortex-z99")
        assert refused.returncode == 2
        assert refused.stderr.startswith("qemu-errata: CPU model 'cortex-z99': unknown")
    finally:
        domain.undefine()
