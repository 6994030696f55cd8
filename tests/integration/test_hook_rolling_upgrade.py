"""The hook during a rolling kernel upgrade, on real libvirt daemons (the test bed).

Three Neoverse-N1 hosts whose hooks read cached host profiles of Linux 6.12, 7.2 and
7.3 (the embedded profiles, probed on nested hosts). Facts pinned: a VM carries the
values it started with; Linux 7.2 and 7.3 accept PSCI 1.1 (a lower version than
their own 1.3) in KVM_SET_ONE_REG, Linux 6.12 refuses 1.3 (it offers at most 1.1).
So a VM of the 6.12 hosts' pool evacuates onto upgraded hosts, and a VM carrying
1.3 does not come back to a 6.12 host: its hook refuses, as that kernel would.
"""

from __future__ import annotations

import libvirt
import pytest
from lxml import etree
from support.testbed import guest_removed

from qemu_errata.commands.hook import SCRIPT_NAME, install
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import PoolModel, baseline
from qemu_errata.core.record import replace
from qemu_errata.testbed.bed import Host, TestBed, guest_xml, migrate
from qemu_errata.vmm.pool_element import pool_element

# The test bed creates system users.
pytestmark = pytest.mark.root

KERNELS = ("6.12", "7.2", "7.3")


@pytest.fixture(scope="module")
def hosts(module_testbed: TestBed, tmp_path_factory: pytest.TempPathFactory) -> list[Host]:
    """One host per kernel, each hook configured with its host's cached profile."""
    hooks_dir = tmp_path_factory.mktemp("hooks")
    install(hooks_dir)
    module_testbed.install_hook(hooks_dir / SCRIPT_NAME)
    profiles = [
        replace(load_embedded_profile(f"kvm-{k}-neoverse-n1"), host=f"n1-{k}") for k in KERNELS
    ]
    started = module_testbed.start_hosts(profiles)
    for host in started:
        host.write_hook_config(
            {"host_profile": str(host.profile_path), "log": str(host.home / "hook.log")}
        )
    return started


def pool_of(kernel: str) -> PoolModel:
    return baseline([load_embedded_profile(f"kvm-{kernel}-neoverse-n1")])


def pool_guest(name: str, model: PoolModel) -> etree._Element:
    return guest_xml(name, "neoverse-n1", metadata=[pool_element(model)])


def test_a_vm_started_on_6_12_evacuates_onto_7_2_then_7_3(hosts: list[Host]) -> None:
    old, new, newest = hosts
    with guest_removed(hosts, "vm-evacuate"):
        domain = old.start_guest(pool_guest("vm-evacuate", pool_of("6.12")))
        on_new = migrate(domain, new)
        assert "vm-evacuate" in new.active_guests()
        on_newest = migrate(on_new, newest)
        assert on_newest.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert "vm-evacuate" in newest.active_guests()


def test_a_vm_carrying_psci_1_3_is_refused_by_a_6_12_host(hosts: list[Host]) -> None:
    old, new, _ = hosts
    with guest_removed(hosts, "vm-back"):
        domain = new.start_guest(pool_guest("vm-back", pool_of("7.2")))
        with pytest.raises(libvirt.libvirtError) as refused:
            migrate(domain, old)
        message = str(refused.value)
        assert "qemu-errata: refused the incoming migration of VM 'vm-back'" in message
        assert "KVM_REG_ARM_PSCI_VERSION.Version: the VM carries '1.3' (0x10003)" in message
        assert "Linux 6.12 on n1-6.12 refuses it (its own is '1.1' (0x10001))" in message
        assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        assert "vm-back" not in old.active_guests()
