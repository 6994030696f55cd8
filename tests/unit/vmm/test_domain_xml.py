"""Applying a pool model to libvirt domain XML: what we own changes, nothing else does."""

from __future__ import annotations

import pytest
from lxml import etree
from support.domains import DOMAIN
from support.pool_oracle import model_from_pool_element
from support.vmm_pool import KVM_GOLDEN, TCG_GOLDEN, hand_written_model, three_host_pool

from qemu_errata.core.pool import PoolModel
from qemu_errata.core.pool_namespace import POOL_NAMESPACE as NAMESPACE
from qemu_errata.errors import InputError
from qemu_errata.vmm.dialects import Dialect, vmm_config
from qemu_errata.vmm.domain_xml import (
    ARG_TAG,
    COMMANDLINE_TAG,
    QEMU_NAMESPACE,
    owned_parts,
)
from qemu_errata.vmm.libvirt_domain import apply_to_domain_xml
from qemu_errata.vmm.pool_element import find_pool_element

OTHER_NAMESPACE = "urn:example:other"

BARE_TCG_DOMAIN = b"""<domain type='qemu'>
  <name>bare</name>
  <os>
    <type arch='aarch64' machine='virt'>hvm</type>
  </os>
  <devices/>
</domain>
"""


def apply(data: bytes, model: PoolModel, qemu_cpu: str | None = None) -> str:
    return apply_to_domain_xml(data, model, "domain.xml", None, qemu_cpu)[0]


def parse(text: str) -> etree._Element:
    return etree.fromstring(text.encode())


def arguments(domain: etree._Element) -> list[str]:
    return [arg.get("value", "") for arg in domain.iterfind(f"{COMMANDLINE_TAG}/{ARG_TAG}")]


def test_applied_domain_has_our_cpu_arguments_and_metadata() -> None:
    model = three_host_pool()
    domain = parse(apply(DOMAIN, model))
    cpu = domain.find("cpu")
    assert cpu is not None
    assert dict(cpu.attrib) == {"mode": "host-passthrough", "check": "none"}  # type: ignore[misc]
    assert [child.tag for child in cpu] == ["topology", "feature"]
    assert arguments(domain) == ["-qmp", "unix:/run/extra.sock,server=on,wait=off", *KVM_GOLDEN[2:]]
    pool = find_pool_element(domain)
    assert pool is not None
    assert etree.QName(pool).namespace == NAMESPACE
    assert pool.getparent() is domain.find("metadata")
    assert model_from_pool_element(pool, "test").target_implementations == (
        model.target_implementations
    )


def test_untouched_parts_are_byte_for_byte_the_same() -> None:
    before = etree.fromstring(DOMAIN)
    after = parse(apply(DOMAIN, three_host_pool()))

    def serialised(domain: etree._Element, path: str) -> bytes:
        element = domain.find(path, {"other": OTHER_NAMESPACE, "qemu": QEMU_NAMESPACE})
        assert element is not None
        return etree.tostring(element, with_tail=False)

    for path in [
        "name",
        "uuid",
        "memory",
        "vcpu",
        "os",
        "clock",
        "devices",
        "metadata/other:tag",
        "cpu/topology",
        "qemu:commandline/qemu:env",
    ]:
        assert serialised(after, path) == serialised(before, path), path
    assert after.nsmap == before.nsmap


def test_the_secret_and_the_order_of_elements_are_kept() -> None:
    domain = parse(apply(DOMAIN, three_host_pool()))
    graphics = domain.find("devices/graphics")
    assert graphics is not None
    assert graphics.get("passwd") == "secret"
    assert [etree.QName(c).localname for c in domain] == [
        "name",
        "uuid",
        "metadata",
        "memory",
        "vcpu",
        "os",
        "cpu",
        "clock",
        "devices",
        "commandline",
    ]


def test_applying_twice_is_applying_once() -> None:
    once = apply(DOMAIN, three_host_pool())
    assert apply(once.encode(), three_host_pool()) == once


def test_a_new_model_replaces_the_old_one() -> None:
    other = hand_written_model(0x414FD0C1, 0x413FD0B1)
    replaced = apply(apply(DOMAIN, three_host_pool()).encode(), other)
    assert replaced == apply(DOMAIN, other)
    domain = parse(replaced)
    assert arguments(domain)[:2] == ["-qmp", "unix:/run/extra.sock,server=on,wait=off"]
    machine = "impl-cpu.0.midr=0x413fd0b1,impl-cpu.1.midr=0x414fd0c1"
    assert arguments(domain)[-2:] == ["-machine", machine]
    assert len(domain.findall(f"metadata/{{{NAMESPACE}}}pool")) == 1


def test_tcg_domain_gets_a_named_model_and_the_presented_midr() -> None:
    applied = apply(BARE_TCG_DOMAIN, three_host_pool(), qemu_cpu="neoverse-n1")
    domain = parse(applied)
    cpu = domain.find("cpu")
    assert cpu is not None
    assert dict(cpu.attrib) == {"mode": "custom", "match": "exact", "check": "none"}  # type: ignore[misc]
    model = cpu.find("model")
    assert model is not None
    assert model.text == "neoverse-n1"
    assert model.get("fallback") == "forbid"
    assert arguments(domain) == TCG_GOLDEN[2:]
    commandline = domain.find(COMMANDLINE_TAG)
    assert commandline is not None
    assert commandline.nsmap["qemu"] == QEMU_NAMESPACE
    switched = apply(applied.encode(), three_host_pool(), qemu_cpu="cortex-a57")
    assert switched == apply(BARE_TCG_DOMAIN, three_host_pool(), qemu_cpu="cortex-a57")


def test_new_elements_follow_the_document_indentation() -> None:
    applied = apply(BARE_TCG_DOMAIN, hand_written_model(0x411FD070), qemu_cpu="cortex-a57")
    assert applied.splitlines()[:4] == [
        '<domain type="qemu">',
        "  <name>bare</name>",
        "  <metadata>",
        '    <qemu-errata:pool xmlns:qemu-errata="urn:qemu-errata:pool:1" version="1">',
    ]
    assert applied.endswith("</qemu:commandline>\n</domain>")


def test_a_compact_document_stays_compact() -> None:
    compact = b"".join(line.strip() for line in BARE_TCG_DOMAIN.splitlines())
    applied = apply(compact, three_host_pool(), qemu_cpu="neoverse-n1")
    assert "\n" not in applied
    assert arguments(parse(applied)) == TCG_GOLDEN[2:]


def test_without_a_domain_the_owned_parts_are_rendered() -> None:
    model = three_host_pool()
    domain = parse(owned_parts(model, vmm_config(model, Dialect.QEMU_KVM)))
    assert domain.get("type") == "kvm"
    assert [etree.QName(c).localname for c in domain] == ["metadata", "cpu", "commandline"]
    assert arguments(domain) == KVM_GOLDEN[2:]


@pytest.mark.parametrize(
    ("data", "qemu_cpu", "problem"),
    [
        (BARE_TCG_DOMAIN, None, "needs a named CPU model"),
        (
            DOMAIN.replace(b"type='kvm'", b"type='xen'"),
            None,
            "the domain is of type .xen.; qemu-kvm runs type .kvm.",
        ),
        (DOMAIN.replace(b"aarch64", b"x86_64"), None, "architecture is 'x86_64', not 'aarch64'"),
        (b"<domain type='kvm'><os>", None, "domain.xml: not well-formed XML"),
        (b"<network/>", None, "the root element is <network>"),
    ],
)
def test_bad_domains_are_refused_with_one_line(
    data: bytes, qemu_cpu: str | None, problem: str
) -> None:
    with pytest.raises(InputError, match=problem):
        apply(data, three_host_pool(), qemu_cpu)


def test_the_dialect_must_match_the_domain_type() -> None:
    with pytest.raises(InputError, match="type 'kvm' cannot run qemu-tcg, which needs type 'qemu'"):
        apply_to_domain_xml(DOMAIN, three_host_pool(), "domain.xml", Dialect.QEMU_TCG, "cortex-a57")


def test_entities_are_not_expanded() -> None:
    hostile = b"""<!DOCTYPE domain [<!ENTITY leak SYSTEM "file:///etc/passwd">]>
<domain type='qemu'><name>&leak;</name><os><type arch='aarch64'>hvm</type></os></domain>"""
    applied = apply(hostile, three_host_pool(), qemu_cpu="cortex-a57")
    assert "root:x:0:0" not in applied
    name = etree.fromstring(applied.encode(), etree.XMLParser(resolve_entities=False)).find("name")
    assert name is not None
    assert name.text is None
    assert [entity.name for entity in name] == ["leak"]  # type: ignore[union-attr]  # _Entity
