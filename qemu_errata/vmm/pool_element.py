"""The pool metadata element a libvirt domain carries: built here only, and read back.

libvirt keeps one custom element per namespace under ``<metadata>`` and sends it
with the migratable XML, so the destination's hook can decide from the domain
XML alone: the target implementation list, the timer frequency and the register
values the guest is promised. Its namespace is core.pool_namespace's.
"""

from __future__ import annotations

from lxml import etree

from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import REGISTER_GROUPS, PoolModel
from qemu_errata.core.pool_namespace import POOL_METADATA_VERSION, POOL_NAMESPACE
from qemu_errata.errors import ProfileError

PREFIX = "qemu-errata"
VERSION = str(POOL_METADATA_VERSION)


def _tag(name: str) -> str:
    return f"{{{POOL_NAMESPACE}}}{name}"


POOL_TAG = _tag("pool")
USER_CPU_TAG = _tag("user-cpu")


def pool_element(model: PoolModel, user_cpu: str | None = None) -> etree._Element:
    """The metadata element describing ``model`` (the only code that builds one).

    ``user_cpu`` is the domain's own ``<cpu>`` element before the model replaced
    it, serialised ("": it had none), kept so that unapply can give it back.
    """
    pool = etree.Element(POOL_TAG, nsmap={PREFIX: POOL_NAMESPACE}, version=VERSION)
    targets = etree.SubElement(pool, _tag("targets"))
    for target in model.target_implementations:
        entry = etree.SubElement(targets, _tag("implementation"), midr=f"{target.midr:#x}")
        if target.revidr is not None:
            entry.set("revidr", f"{target.revidr:#x}")
        if target.aidr is not None:
            entry.set("aidr", f"{target.aidr:#x}")
    if model.timer_frequency_hz is not None:
        etree.SubElement(pool, _tag("timer"), frequency=str(model.timer_frequency_hz))
    for group in REGISTER_GROUPS:
        values = getattr(model, group)
        if not values:
            continue
        registers = etree.SubElement(pool, _tag("registers"), group=group)
        for name, value in values.items():
            etree.SubElement(registers, _tag("register"), name=name, value=f"{value:#x}")
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


def model_from_pool_element(pool: etree._Element, origin: str) -> PoolModel:
    """The model a metadata element describes; ProfileError naming what is wrong."""
    if pool.get("version") != VERSION:
        version = pool.get("version")
        raise ProfileError(f"{origin}: pool metadata version {version!r} is not {VERSION}")
    targets = [
        TargetImplementation(
            _number(entry, "midr", origin),
            _optional_number(entry, "revidr", origin),
            _optional_number(entry, "aidr", origin),
        )
        for entry in pool.iterfind(f"{_tag('targets')}/{_tag('implementation')}")
    ]
    if not targets:
        raise ProfileError(f"{origin}: pool metadata lists no target implementation")
    timer = pool.find(_tag("timer"))
    groups: dict[str, dict[str, int]] = {group: {} for group in REGISTER_GROUPS}
    for registers in pool.iterfind(_tag("registers")):
        group = registers.get("group", "")
        if group not in groups:
            raise ProfileError(f"{origin}: pool metadata has unknown register group {group!r}")
        for register in registers.iterfind(_tag("register")):
            groups[group][register.get("name", "")] = _number(register, "value", origin)
    return PoolModel(
        target_implementations=TargetImplementations(targets),
        timer_frequency_hz=None if timer is None else _number(timer, "frequency", origin, 10),
        id_registers=groups["id_registers"],
        firmware_registers=groups["firmware_registers"],
        gic_registers=groups["gic_registers"],
    )


def _optional_number(element: etree._Element, attribute: str, origin: str) -> int | None:
    return None if element.get(attribute) is None else _number(element, attribute, origin)


def _number(element: etree._Element, attribute: str, origin: str, base: int = 16) -> int:
    text = element.get(attribute)
    try:
        return int(text or "", base)
    except ValueError:
        tag = etree.QName(element).localname
        raise ProfileError(
            f"{origin}: pool metadata <{tag} {attribute}={text!r}> is not a number"
        ) from None
