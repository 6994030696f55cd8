"""Taking a pool model off a domain gives the user's own <cpu> back."""

from __future__ import annotations

import pytest
from lxml import etree
from support.domains import DOMAIN
from support.vmm_pool import hand_written_model, three_host_pool

from qemu_errata.errors import InputError
from qemu_errata.vmm.dialects import Dialect, vmm_config
from qemu_errata.vmm.domain_xml import apply_model, parse_domain, remove_model, serialise
from qemu_errata.vmm.pool_element import USER_CPU_TAG, find_pool_element


def canonical(tree: etree._ElementTree) -> bytes:
    return etree.tostring(tree, method="c14n")


def applied(data: bytes, *models_in_turn: int) -> etree._ElementTree:
    tree = parse_domain(data, "domain.xml")
    for midr in models_in_turn:
        model = hand_written_model(midr) if midr else three_host_pool()
        apply_model(tree.getroot(), model, vmm_config(model, Dialect.QEMU_KVM, None), "domain.xml")
    return tree


def test_unapply_after_one_or_two_applies_is_the_domain_as_it_was() -> None:
    original = parse_domain(DOMAIN, "domain.xml")
    for models in [(0,), (0, 0x411FD070)]:
        tree = applied(DOMAIN, *models)
        assert b"<feature policy='disable' name='pmu'/>" not in serialise(tree).encode()
        remove_model(tree.getroot(), "domain.xml")
        assert canonical(tree) == canonical(original)


def test_a_domain_without_a_cpu_gets_none_back() -> None:
    data = DOMAIN.replace(DOMAIN[DOMAIN.index(b"  <cpu") : DOMAIN.index(b"  <clock")], b"")
    tree = applied(data, 0)
    assert tree.getroot().find("cpu") is not None
    remove_model(tree.getroot(), "domain.xml")
    assert canonical(tree) == canonical(parse_domain(data, "domain.xml"))


def test_unapply_refuses_a_domain_without_our_model_or_without_its_cpu_recorded() -> None:
    with pytest.raises(InputError, match=r"domain\.xml: the domain carries no pool model"):
        remove_model(parse_domain(DOMAIN, "domain.xml").getroot(), "domain.xml")
    tree = applied(DOMAIN, 0)
    pool = find_pool_element(tree.getroot())
    assert pool is not None
    saved = pool.find(USER_CPU_TAG)
    assert saved is not None
    pool.remove(saved)
    with pytest.raises(InputError, match="does not record the domain's own <cpu>"):
        remove_model(tree.getroot(), "domain.xml")
