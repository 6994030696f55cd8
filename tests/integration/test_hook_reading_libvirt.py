"""How libvirt 9.0 (libxml2) reads pool metadata the hook's expat reader once read otherwise.

Pinned on a real daemon of the test bed with ``define`` + ``dumpxml``: libvirt applies
internal-subset declarations that follow a parameter-entity reference (a ``#FIXED
xmlns`` default puts an unprefixed ``<pool>`` in the pool namespace), keeps an entity
holding markup as a reference its XPath never enters, and drops a child of
``<domain>`` whose namespace URI merely contains ``metadata/``. ``restore --xml``
hands the hook the caller's XML: the hook refuses such a document on a host outside
the pool instead of reading it differently.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from lxml import etree

from qemu_errata.commands.hook import SCRIPT_NAME, install
from qemu_errata.core.pool_namespace import POOL_NAMESPACE as NS
from qemu_errata.testbed.bed import Host, TestBed, cpu_host, guest_xml

pytestmark = pytest.mark.root

N1 = 0x414FD0C1
A64FX = 0x461F0010
POOL_NAMES = ("pool", "targets", "implementation")
# Declarations after %pe; that expat ignores and libxml2 applies.
FIXED_NAMESPACE = (
    "<!DOCTYPE domain [<!ENTITY % pe '<!-- -->'> %pe; "
    + "".join(f"<!ATTLIST {name} xmlns CDATA #FIXED '{NS}'>" for name in POOL_NAMES)
    + "]>"
)


@pytest.fixture(scope="module")
def host(module_testbed: TestBed, tmp_path_factory: pytest.TempPathFactory) -> Host:
    """An A64FX host running the hook; the pools below list only Neoverse-N1."""
    hooks_dir = tmp_path_factory.mktemp("hooks")
    install(hooks_dir)
    module_testbed.install_hook(hooks_dir / SCRIPT_NAME)
    [started] = module_testbed.start_hosts([cpu_host("c", A64FX)])
    started.write_hook_config({"log": str(started.home / "hook.log")})
    return started


@contextlib.contextmanager
def defined(host: Host, xml: str) -> Iterator[str]:
    """Define ``xml``; yield libvirt's own reading of it (``dumpxml``); undefine it."""
    domain = host.connection.defineXML(xml)
    try:
        yield domain.XMLDesc(0)
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            if domain.isActive():
                domain.destroy()
        domain.undefine()


def guest_text(name: str, metadata: str = "", extra: str = "") -> str:
    """The test bed's guest as text, with ``metadata`` in <metadata> and ``extra`` in <domain>."""
    text = etree.tostring(guest_xml(name, "cortex-a76"), encoding="unicode")
    return text.replace("</domain>", f"<metadata>{metadata}</metadata>{extra}</domain>")


def targets(dumped: str) -> list[str | None]:
    path = f"metadata/{{{NS}}}pool/{{{NS}}}targets/{{{NS}}}implementation"
    return [entry.get("midr") for entry in etree.fromstring(dumped.encode()).iterfind(path)]


def test_libvirt_applies_fixed_namespace_defaults_after_a_parameter_entity(host: Host) -> None:
    pool = f"<pool version='1'><targets><implementation midr='{N1:#x}'/></targets></pool>"
    with defined(host, FIXED_NAMESPACE + guest_text("vm-fixed", pool)) as dumped:
        assert targets(dumped) == [f"{N1:#x}"]


def test_libvirt_never_reads_a_target_inside_an_entity(host: Host) -> None:
    entity = f"<!DOCTYPE domain [<!ENTITY t \"<implementation xmlns='{NS}' midr='{A64FX:#x}'/>\">]>"
    pool = (
        f"<q:pool xmlns:q='{NS}' version='1'><q:targets>"
        f"<q:implementation midr='{N1:#x}'/>&t;</q:targets></q:pool>"
    )
    with defined(host, entity + guest_text("vm-entity", pool)) as dumped:
        # libvirt writes the reference back without its DTD (dumpxml is then not even
        # well-formed): its pool lists N1 only, the A64FX entry was never an element.
        assert f"<q:implementation midr='{N1:#x}'/>&t;" in dumped.replace('"', "'")
        assert f"{A64FX:#x}" not in dumped


def test_libvirt_drops_a_domain_child_whose_namespace_holds_a_slash(host: Host) -> None:
    pool = (
        f"<q:pool xmlns:q='{NS}' version='1'><q:targets>"
        f"<q:implementation midr='{N1:#x}'/></q:targets></q:pool>"
    )
    stray = (
        f"<s:pool xmlns:s='metadata/{NS}' xmlns:q='{NS}' version='1'><q:targets>"
        f"<q:implementation midr='{A64FX:#x}'/></q:targets></s:pool>"
    )
    with defined(host, guest_text("vm-slash", pool, stray)) as dumped:
        assert targets(dumped) == [f"{N1:#x}"]
        assert f"metadata/{NS}" not in dumped


def test_restore_with_a_document_the_hook_cannot_read_as_libvirt_is_refused(
    host: Host, tmp_path: Path
) -> None:
    """The saved VM is no pool VM; the XML given to restore makes it one for libvirt only."""
    with defined(host, guest_text("vm-restore")) as _:
        domain = host.connection.lookupByName("vm-restore")
        domain.create()
        image = host.save(domain)
        pool = f"<pool version='1'><targets><implementation midr='{N1:#x}'/></targets></pool>"
        crafted = FIXED_NAMESPACE + guest_text("vm-restore", pool)
        with pytest.raises(libvirt.libvirtError) as refused:
            host.connection.restoreFlags(str(image), crafted, 0)
        message = str(refused.value)
        assert "qemu-errata: refused the restore of VM 'vm-restore'" in message
        assert "has a DOCTYPE" in message
        assert "vm-restore" not in host.active_guests()
