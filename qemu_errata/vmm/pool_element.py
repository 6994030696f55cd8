"""The pool metadata element a libvirt domain carries: built here only.

libvirt keeps one custom element per namespace under ``<metadata>`` and sends it
with the migratable XML, so the destination's hook can decide from the domain
XML alone: the target implementation list, the timer frequency, the register
values the guest is promised and the lost mitigations the model accepts by name.
Every name and the version come from ``core.pool_namespace``, which the hook's
reader spells them from too.
"""

from __future__ import annotations

from lxml import etree

from qemu_errata.core import pool_namespace as vocabulary
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.pool_namespace import POOL_NAMESPACE, REGISTER_GROUPS


def _tag(name: str) -> str:
    return f"{{{POOL_NAMESPACE}}}{name}"


POOL_TAG = _tag(vocabulary.POOL)
USER_CPU_TAG = _tag(vocabulary.USER_CPU)


def pool_element(model: PoolModel, user_cpu: str | None = None) -> etree._Element:
    """The metadata element describing ``model`` (the only code that builds one).

    ``user_cpu`` is the domain's own ``<cpu>`` element before the model replaced
    it, serialised ("": it had none), kept so that unapply can give it back.
    """
    pool = etree.Element(
        POOL_TAG,
        {vocabulary.VERSION_ATTRIBUTE: vocabulary.VERSION},
        nsmap={vocabulary.PREFIX: POOL_NAMESPACE},
    )
    targets = etree.SubElement(pool, _tag(vocabulary.TARGETS))
    for target in model.target_implementations:
        entry = etree.SubElement(
            targets, _tag(vocabulary.IMPLEMENTATION), {vocabulary.MIDR: f"{target.midr:#x}"}
        )
        if target.revidr is not None:
            entry.set(vocabulary.REVIDR, f"{target.revidr:#x}")
        if target.aidr is not None:
            entry.set(vocabulary.AIDR, f"{target.aidr:#x}")
    if model.timer_frequency_hz is not None:
        etree.SubElement(
            pool, _tag(vocabulary.TIMER), {vocabulary.FREQUENCY: str(model.timer_frequency_hz)}
        )
    for group in REGISTER_GROUPS:
        values = getattr(model, group)
        if not values:
            continue
        registers = etree.SubElement(pool, _tag(vocabulary.REGISTERS), {vocabulary.GROUP: group})
        for name, value in values.items():
            etree.SubElement(
                registers,
                _tag(vocabulary.REGISTER),
                {vocabulary.NAME: name, vocabulary.VALUE: f"{value:#x}"},
            )
    for name in model.accepted_lost_mitigations:
        etree.SubElement(pool, _tag(vocabulary.ACCEPTED), {vocabulary.NAME: name})
    if user_cpu is not None:
        etree.SubElement(pool, USER_CPU_TAG).text = user_cpu
    return pool


def saved_user_cpu(pool: etree._Element) -> str | None:
    """The domain's own ``<cpu>`` a pool element keeps ("": none; None: not recorded)."""
    saved = pool.find(USER_CPU_TAG)
    return None if saved is None else saved.text or ""


def find_pool_element(domain: etree._Element) -> etree._Element | None:
    """Our element under the domain's ``<metadata>``, if the domain is a pool VM."""
    return domain.find(f"metadata/{POOL_TAG}")
