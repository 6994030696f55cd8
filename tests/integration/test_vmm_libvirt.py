"""apply and verify against a real libvirt session daemon (libvirt 9.0, QEMU 7.2 TCG).

The daemon is one host of a module-wide test bed (qemu_errata.testbed.bed), which
reuses the QEMU capability probe, so it starts in about a second; the test
bed's teardown stops the daemon, its guests and its virtlogd. Guests are the
test bed's small aarch64 domains, started paused: QEMU runs with the full
command line and answers QMP, and no vCPU burns a core.

verify reaches the guest two ways: through libvirt's own monitor
(``--connect/--domain``; libvirt holds the monitor socket, and marks the
domain tainted by a custom monitor command) and through a second QMP socket
the domain's qemu:commandline adds (``--qmp``), which apply must keep.
"""

from __future__ import annotations

from pathlib import Path

import libvirt
import pytest
from lxml import etree
from support.cli import run_cli
from support.pool_oracle import model_from_pool_element
from support.vmm_pool import hand_written_model, three_host_pool

from qemu_errata.core.pool_namespace import POOL_NAMESPACE as NAMESPACE
from qemu_errata.files import write_json
from qemu_errata.testbed.bed import Host, guest_xml
from qemu_errata.vmm.pool_element import find_pool_element

DOMAIN_NAME = "pool-vm"

# The test bed creates system users.
pytestmark = pytest.mark.root


def pool_vm_xml(extra_qmp: Path) -> etree._Element:
    """A test-bed guest with 2 vCPUs and a second QMP socket of its own."""
    domain = guest_xml(
        DOMAIN_NAME, "cortex-a57", qemu_args=["-qmp", f"unix:{extra_qmp},server=on,wait=off"]
    )
    vcpu = domain.find("vcpu")
    assert vcpu is not None
    vcpu.text = "2"
    return domain


def qemu_command_line(n1_host: Host) -> list[str]:
    """The running guest's QEMU command line, from its pid file and /proc."""
    pid_file = next((n1_host.runtime_dir / "libvirt" / "qemu").rglob(f"{DOMAIN_NAME}.pid"))
    pid = int(pid_file.read_text())
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


@pytest.fixture
def model_files(tmp_path: Path) -> tuple[Path, Path]:
    pool, other = tmp_path / "pool.json", tmp_path / "other.json"
    write_json(pool, three_host_pool().to_json())
    write_json(other, hand_written_model(0x411FD070).to_json())
    return pool, other


def test_apply_start_and_verify_a_pool_vm(n1_host: Host, model_files: tuple[Path, Path]) -> None:
    pool, other = model_files
    extra_qmp = n1_host.home / "extra-qmp.sock"
    domain = n1_host.define_guest(pool_vm_xml(extra_qmp))
    try:
        devices_before = etree.fromstring(domain.XMLDesc(0)).find("devices")
        assert devices_before is not None
        apply = ("apply", pool, "--connect", n1_host.uri, "--domain", DOMAIN_NAME)
        applied = run_cli(*apply, "--qemu-cpu", "neoverse-n1")
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout == f"Domain {DOMAIN_NAME} redefined with the pool model (qemu-tcg).\n"
        again = run_cli(*apply, "--qemu-cpu", "neoverse-n1")
        assert again.stdout.endswith("definition unchanged.\n"), again.stderr
        devices_after = etree.fromstring(domain.XMLDesc(0)).find("devices")
        assert devices_after is not None
        assert etree.tostring(devices_after) == etree.tostring(devices_before)

        domain.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        command_line = qemu_command_line(n1_host)
        assert "neoverse-n1-arm-cpu.midr=0x411fd070" in command_line
        assert command_line[command_line.index("-cpu") + 1] == "neoverse-n1"

        live = etree.fromstring(domain.XMLDesc(0))
        element = find_pool_element(live)
        assert element is not None
        assert model_from_pool_element(element, "dumpxml").target_implementations == (
            three_host_pool().target_implementations
        )
        metadata = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, NAMESPACE)
        assert etree.QName(etree.fromstring(metadata)).localname == "pool"

        by_libvirt = run_cli("verify", pool, "--connect", n1_host.uri, "--domain", DOMAIN_NAME)
        # qemu-tcg gives the MIDR but cannot lower neoverse-n1's fields to the pool's.
        assert by_libvirt.returncode == 1, by_libvirt.stdout + by_libvirt.stderr
        assert "ID_AA64PFR0_EL1.CSV3: the model sets NI (0x0)" in by_libvirt.stdout
        assert "MIDR" not in by_libvirt.stdout
        by_socket = run_cli("verify", pool, "--qmp", extra_qmp)
        assert by_socket.returncode == 1, by_socket.stdout + by_socket.stderr
        assert by_socket.stdout == by_libvirt.stdout

        # Nothing to change on a running domain is no reason to ask for --next-boot.
        unchanged = run_cli(
            "apply",
            pool,
            "--connect",
            n1_host.uri,
            "--domain",
            DOMAIN_NAME,
            "--qemu-cpu",
            "neoverse-n1",
        )
        assert (unchanged.returncode, unchanged.stdout) == (
            0,
            f"Domain {DOMAIN_NAME} already presents this pool model: definition unchanged.\n",
        )
        apply_other = ("apply", other, "--connect", n1_host.uri, "--domain", DOMAIN_NAME)
        refused = run_cli(*apply_other, "--qemu-cpu", "cortex-a57")
        # A usage error (README: 2), not a negative answer: --next-boot was left out.
        assert refused.returncode == 2
        assert refused.stderr == (
            f"qemu-errata: {n1_host.uri}: domain {DOMAIN_NAME} is running: a new definition "
            f"takes effect at its next boot; give --next-boot to stage it\n"
        )
        staged = run_cli(*apply_other, "--qemu-cpu", "cortex-a57", "--next-boot")
        assert staged.returncode == 0, staged.stderr
        assert "runs the old definition until its next boot" in staged.stdout
        persistent = etree.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert persistent.findtext("cpu/model") == "cortex-a57"
        assert etree.fromstring(domain.XMLDesc(0)).findtext("cpu/model") == "neoverse-n1"
    finally:
        if domain.isActive():
            domain.destroy()
        domain.undefine()


def test_apply_to_an_unknown_domain_is_bad_input(
    n1_host: Host, model_files: tuple[Path, Path]
) -> None:
    result = run_cli(
        "apply",
        model_files[0],
        "--connect",
        n1_host.uri,
        "--domain",
        "nosuch",
        "--qemu-cpu",
        "cortex-a57",
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"qemu-errata: {n1_host.uri}: domain nosuch: ")
    assert result.stderr.count("\n") == 1


def test_a_transient_domain_is_not_redefined(n1_host: Host, model_files: tuple[Path, Path]) -> None:
    xml = etree.tostring(guest_xml("transient-vm"), encoding="unicode")
    domain = n1_host.connection.createXML(xml, libvirt.VIR_DOMAIN_START_PAUSED)
    try:
        result = run_cli(
            "apply",
            model_files[0],
            "--connect",
            n1_host.uri,
            "--domain",
            "transient-vm",
            "--qemu-cpu",
            "cortex-a57",
            "--next-boot",
        )
        assert result.returncode == 2
        assert result.stderr == (
            f"qemu-errata: {n1_host.uri}: domain transient-vm is transient: only a defined domain "
            f"can change\n"
        )
        assert not domain.isPersistent()
    finally:
        domain.destroy()
