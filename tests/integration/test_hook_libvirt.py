"""The installed hook on real libvirt daemons: three simulated hosts (the test bed).

Hosts A (Neoverse-N1) and B (Cortex-A76) are in the VM's pool, C (A64FX) is
not. A running pool VM migrates A->B, is refused B->C with the hook's line in
libvirt's error and stays on B unchanged, then migrates back B->A; a VM
without metadata goes to C untouched; a saved pool VM restores on A, not C.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import libvirt
import pytest
from lxml import etree
from support.cli import QEMU_ERRATA
from support.testbed import guest_removed

from qemu_errata.commands.hook import SCRIPT_NAME, install
from qemu_errata.core.implementations import (
    TargetImplementation,
    TargetImplementations,
)
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.pool_namespace import POOL_NAMESPACE as NAMESPACE
from qemu_errata.core.record import replace
from qemu_errata.testbed.bed import Host, TestBed, cpu_host, guest_xml, migrate
from qemu_errata.vmm.pool_element import pool_element

# The test bed creates system users.
pytestmark = pytest.mark.root

N1 = 0x414FD0C1
A76 = 0x414FD0B1
A64FX = 0x461F0010
A53 = 0x410FD034  # Arm Cortex-A53 r0p4: on the Spectre-v4 and Spectre-BHB safe lists
POOL = PoolModel(
    id_registers={},
    target_implementations=TargetImplementations(
        TargetImplementation(midr, 0, None) for midr in (N1, A76)
    ),
)


@pytest.fixture(scope="module")
def hosts(module_testbed: TestBed, tmp_path_factory: pytest.TempPathFactory) -> list[Host]:
    """A, B and C, each running the hook as `qemu-errata hook install` writes it."""
    hooks_dir = tmp_path_factory.mktemp("hooks")
    install(hooks_dir)
    module_testbed.install_hook(hooks_dir / SCRIPT_NAME)
    started = module_testbed.start_hosts(
        [cpu_host("a", N1), cpu_host("b", A76), cpu_host("c", A64FX)]
    )
    for host in started:
        host.write_hook_config({"log": str(hook_log(host))})
    return started


def hook_log(host: Host) -> Path:
    return host.home / "hook.log"


def logged(host: Host, domain: str) -> list[str]:
    path = hook_log(host)
    lines = path.read_text().splitlines() if path.exists() else []
    return [line for line in lines if f"domain={domain!r}" in line]


def pool_guest(name: str) -> etree._Element:
    return guest_xml(name, "cortex-a76", metadata=[pool_element(POOL)])


def migratable_xml(domain: Any) -> bytes:
    description: str = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
    return description.encode()


def test_pool_vm_migrates_inside_its_pool_and_is_refused_outside(hosts: list[Host]) -> None:
    a, b, c = hosts
    with guest_removed([a, b, c], "vm-pool"):
        domain = migrate(a.start_guest(pool_guest("vm-pool")), b)
        assert "vm-pool" in b.active_guests()
        before = migratable_xml(domain)
        with pytest.raises(libvirt.libvirtError) as refused:
            migrate(domain, c)
        message = str(refused.value)
        assert "Hook script execution failed" in message
        assert "qemu-errata: refused the incoming migration of VM 'vm-pool'" in message
        assert "Fujitsu A64FX r1p0" in message
        assert "Arm Cortex-A76 r4p1" in message
        assert "Arm Neoverse-N1 r4p1" in message
        assert "vm-pool" not in c.active_guests()
        assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert migratable_xml(domain) == before
        back = migrate(domain, a)
        assert back.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert (
            etree.fromstring(migratable_xml(back)).find(f"metadata/{{{NAMESPACE}}}pool") is not None
        )
    assert any("op=migrate" in line and "outcome=allowed" in line for line in logged(b, "vm-pool"))
    assert any("op=migrate" in line and "outcome=refused" in line for line in logged(c, "vm-pool"))


def test_vm_without_metadata_is_untouched(hosts: list[Host]) -> None:
    a, _, c = hosts
    with guest_removed([a, c], "vm-plain"):
        domain = a.start_guest(guest_xml("vm-plain", "cortex-a76"))
        before = migratable_xml(domain)
        moved = migrate(domain, c)
        assert moved.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert migratable_xml(moved) == before
    assert logged(c, "vm-plain") == []


def test_saved_pool_vm_restores_inside_its_pool_only(hosts: list[Host]) -> None:
    a, _, c = hosts
    with guest_removed([a, c], "vm-saved"):
        image = a.save(a.start_guest(pool_guest("vm-saved")))
        with pytest.raises(libvirt.libvirtError) as refused:
            c.restore(image)
        assert "qemu-errata: refused the restore of VM 'vm-saved'" in str(refused.value)
        assert "vm-saved" not in c.active_guests()
        restored = a.restore(image)
        assert restored.state()[0] == libvirt.VIR_DOMAIN_RUNNING


def test_pool_vm_does_not_start_outside_its_pool(hosts: list[Host]) -> None:
    c = hosts[2]
    with guest_removed([c], "vm-start"), pytest.raises(libvirt.libvirtError) as refused:
        c.start_guest(pool_guest("vm-start"))
    assert "qemu-errata: refused the start of VM 'vm-start'" in str(refused.value)
    assert 'start_policy = "warn"' in str(refused.value)


def domain_log(host: Host, name: str) -> str:
    """The VM's own log, as this session daemon keeps it ($XDG_CACHE_HOME/libvirt/qemu/log)."""
    path = host.cache_dir / "libvirt" / "qemu" / "log" / f"{name}.log"
    return path.read_text() if path.exists() else ""


def test_warn_starts_the_vm_and_says_would_refuse_in_its_libvirt_log(
    hosts: list[Host], tmp_path: Path
) -> None:
    """libvirt shows a hook's stderr only when the hook fails (virCommandRun keeps it for
    its debug log otherwise): a warning reaches the person who started the VM through
    the VM's own log, which the hook appends to."""
    c = hosts[2]
    c.write_hook_config({"log": str(hook_log(c)), "start_policy": "warn"})
    try:
        with guest_removed([c], "vm-plain-first"):  # a session daemon makes its log directory
            c.start_guest(guest_xml("vm-plain-first", "cortex-a76")).destroy()
        with guest_removed([c], "vm-warn"):
            domain = c.start_guest(pool_guest("vm-warn"))
            assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
            text = domain_log(c, "vm-warn")
            warning = next(line for line in text.splitlines() if "qemu-errata" in line)
            assert "qemu-errata: would refuse the start of VM 'vm-warn'" in warning
            assert f"(start_policy = 'warn' in {c.hook_config_path}, so it starts anyway)" in (
                warning
            )
            assert "Fujitsu A64FX r1p0" in warning
            # The hook's line comes before libvirt's own record of the start.
            assert text.index(warning) < text.index("starting up libvirt version")
            [decision] = [line for line in logged(c, "vm-warn") if "op=prepare" in line]
            assert "outcome=allowed (start_policy warn) | qemu-errata: would refuse" in decision
            assert "not written" not in decision

            # The admission dry run of the same domain, as the host's user with its HOME.
            hooks_dir = c.home / "qemu.d"
            as_user = ["runuser", "-u", c.user, "--", QEMU_ERRATA, "hook"]
            where = ["--hooks-dir", str(hooks_dir), "--home", str(c.home)]
            installed = subprocess.run(
                [*as_user, "install", *where], capture_output=True, check=False
            )
            assert installed.returncode == 0, installed.stderr
            dry = subprocess.run(
                [*as_user, "check", *where, "--connect", c.uri, "--domain", "vm-warn"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert dry.returncode == 1, dry.stdout + dry.stderr
            last = dry.stdout.splitlines()[-1]  # under warn, only arrivals are refused
            assert last.startswith(
                "The hook would refuse an incoming migration or restore of VM 'vm-warn' here "
                "(a start goes on with a warning: start_policy = 'warn' in "
            )
            assert "): this host's CPUs 0-1 are Fujitsu A64FX" in last
    finally:
        c.write_hook_config({"log": str(hook_log(c))})


def test_a_lost_mitigation_is_refused_unless_the_model_accepts_it(hosts: list[Host]) -> None:
    # Linux >= 6.15 guests match the Spectre-BHB safe list against ANY listed CPU
    # (is_midr_in_range_list()): a Cortex-A53 in the list turns Spectre-BHB off on host A's
    # Neoverse-N1, which the Spectre-BHB loop list names.
    a, b, _ = hosts
    targets = TargetImplementations(
        [*POOL.target_implementations, TargetImplementation(A53, 0, None)]
    )
    losing = replace(POOL, target_implementations=targets)
    with guest_removed([a], "vm-lost"), pytest.raises(libvirt.libvirtError) as refused:
        a.start_guest(guest_xml("vm-lost", "cortex-a76", metadata=[pool_element(losing)]))
    message = str(refused.value)
    assert "qemu-errata: refused the start of VM 'vm-lost': Spectre-BHB LOST on " in message
    assert "Arm Cortex-A53 r0p4 is on the kernel's safe list" in message
    assert "--accept-lost-mitigation Spectre-BHB" in message
    accepted = replace(losing, accepted_lost_mitigations=("Spectre-BHB",))
    with guest_removed([a, b], "vm-accepted"):
        domain = a.start_guest(
            guest_xml("vm-accepted", "cortex-a76", metadata=[pool_element(accepted)])
        )
        moved = migrate(domain, b)
        assert moved.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        pool = etree.fromstring(migratable_xml(moved)).find(f"metadata/{{{NAMESPACE}}}pool")
        assert pool is not None
        assert [e.get("name") for e in pool.iterfind(f"{{{NAMESPACE}}}accepted")] == ["Spectre-BHB"]
