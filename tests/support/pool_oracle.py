"""libvirt's reading of a domain XML, with lxml: the oracle the hook's expat reader is held to.

libvirt parses with libxml2 (``XML_PARSE_NONET``, no ``XML_PARSE_NOENT``: an entity
reference in content stays a reference node its XPath never enters) and reads the
pool element under ``domain/metadata`` by namespace. ``libvirt_view`` gives what
such a reading sees, in the terms of ``libvirt_hooks.domain``: the pool's targets,
timer and registers, and the CPUs the vCPUs may use, so a differential test can
compare the two readers fact for fact. Names come from ``core.pool_namespace``
like the writer's and the hook's.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from qemu_errata.core import pool_namespace as vocabulary
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.pool_namespace import POOL_NAMESPACE, POOL_NAMESPACE_PREFIX, REGISTER_GROUPS
from qemu_errata.errors import ProfileError

MAX_CPUS = 8192  # Linux's largest NR_CPUS: libvirt's hosts have no CPU past it
MAX_VCPUS = 4096


def _tag(name: str) -> str:
    return f"{{{POOL_NAMESPACE}}}{name}"


def libvirt_parser() -> etree.XMLParser:
    """libxml2 configured as libvirt's virXMLParse configures it."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def model_from_pool_element(pool: etree._Element, origin: str) -> PoolModel:
    """The model a metadata element describes; ProfileError naming what is wrong."""
    if pool.get(vocabulary.VERSION_ATTRIBUTE) != vocabulary.VERSION:
        version = pool.get(vocabulary.VERSION_ATTRIBUTE)
        raise ProfileError(
            f"{origin}: pool metadata version {version!r} is not {vocabulary.VERSION}"
        )
    targets = [
        TargetImplementation(
            _number(entry, vocabulary.MIDR, origin),
            _optional_number(entry, vocabulary.REVIDR, origin),
            _optional_number(entry, vocabulary.AIDR, origin),
        )
        for entry in pool.iterfind(f"{_tag(vocabulary.TARGETS)}/{_tag(vocabulary.IMPLEMENTATION)}")
    ]
    if not targets:
        raise ProfileError(f"{origin}: pool metadata lists no target implementation")
    timers = pool.findall(_tag(vocabulary.TIMER))
    if len(timers) > 1:
        raise ProfileError(f"{origin}: pool metadata has two <timer> elements")
    groups: dict[str, dict[str, int]] = {group: {} for group in REGISTER_GROUPS}
    for registers in pool.iterfind(_tag(vocabulary.REGISTERS)):
        group = registers.get(vocabulary.GROUP, "")
        if group not in groups:
            raise ProfileError(f"{origin}: pool metadata has unknown register group {group!r}")
        for register in registers.iterfind(_tag(vocabulary.REGISTER)):
            name = register.get(vocabulary.NAME, "")
            groups[group][name] = _number(register, vocabulary.VALUE, origin)
    accepted = [
        entry.get(vocabulary.NAME, "") for entry in pool.iterfind(_tag(vocabulary.ACCEPTED))
    ]
    return PoolModel(
        accepted_lost_mitigations=tuple(accepted),
        target_implementations=TargetImplementations(targets),
        timer_frequency_hz=(
            _number(timers[0], vocabulary.FREQUENCY, origin, vocabulary.DECIMAL) if timers else None
        ),
        id_registers=groups["id_registers"],
        firmware_registers=groups["firmware_registers"],
        gic_registers=groups["gic_registers"],
    )


def _optional_number(element: etree._Element, attribute: str, origin: str) -> int | None:
    return None if element.get(attribute) is None else _number(element, attribute, origin)


def _number(
    element: etree._Element, attribute: str, origin: str, base: int = vocabulary.HEX
) -> int:
    text = element.get(attribute)
    try:
        return int(text or "", base)
    except ValueError:
        tag = etree.QName(element).localname
        raise ProfileError(
            f"{origin}: pool metadata <{tag} {attribute}={text!r}> is not a number"
        ) from None


# --- a whole document, as libvirt reads it -------------------------------------------------


@dataclass(frozen=True)
class PoolFacts:
    """What the hook decides on: targets (MIDR, REVIDR, AIDR), timer, registers by group."""

    targets: tuple[tuple[int, int | None, int | None], ...]
    timer_frequency_hz: int | None
    registers: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]


@dataclass(frozen=True)
class LibvirtView:
    """libvirt's reading: ``pool`` None (no pool metadata) or "invalid" (metadata it cannot
    use); ``cpus`` the CPUs its vCPUs may use (None: any; "invalid": a refused pinning)."""

    pool: PoolFacts | str | None
    cpus: frozenset[int] | str | None


def libvirt_view(xml: bytes) -> LibvirtView | None:
    """What libvirt reads in ``xml``; None if libxml2 refuses the document or it is no domain."""
    try:
        root = etree.fromstring(xml, libvirt_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root is None or root.tag != "domain":
        return None
    ours = [
        child
        for metadata in root.findall("metadata")
        for child in metadata
        if isinstance(child.tag, str) and child.tag.startswith("{" + POOL_NAMESPACE_PREFIX)
    ]
    if not ours:
        return LibvirtView(None, None)
    return LibvirtView(_pool_facts(ours), frozenset_or(allowed_cpus(root)))


def frozenset_or(cpus: set[int] | str | None) -> frozenset[int] | str | None:
    return frozenset(cpus) if isinstance(cpus, set) else cpus


def _pool_facts(ours: list[etree._Element]) -> PoolFacts | str:
    if len(ours) != 1 or ours[0].tag != _tag(vocabulary.POOL):
        return "invalid"
    try:
        model = model_from_pool_element(ours[0], "oracle")
    except ProfileError:
        return "invalid"
    return PoolFacts(
        targets=tuple((t.midr, t.revidr, t.aidr) for t in model.target_implementations),
        timer_frequency_hz=model.timer_frequency_hz,
        registers=tuple(
            (group, tuple(sorted(getattr(model, group).items())))
            for group in REGISTER_GROUPS
            if getattr(model, group)
        ),
    )


def libvirt_cpuset(text: str | None) -> set[int] | str:
    """libvirt's virBitmapParse, left to right; "invalid" where the hook refuses it."""
    if text is None:
        return "invalid"
    cpus: set[int] = set()
    for raw in text.split(","):
        item = raw.strip()
        negative = item.startswith("^")
        first, _, last = (item[1:] if negative else item).partition("-")
        numbers = [first.strip(), last.strip()] if last else [first.strip()]
        if not all(n.isascii() and n.isdigit() for n in numbers):
            return "invalid"
        values = [int(n) for n in numbers]
        if any(v >= MAX_CPUS for v in values) or (negative and last):
            return "invalid"
        if negative:
            cpus.discard(values[0])
        elif len(values) == 2:
            if values[1] < values[0]:
                return "invalid"
            cpus.update(range(values[0], values[1] + 1))
        else:
            cpus.add(values[0])
    return cpus or "invalid"


def allowed_cpus(root: etree._Element) -> set[int] | str | None:  # noqa: PLR0911 (libvirt's rules)
    """The CPUs the vCPUs may use: ``<vcpupin>`` per vCPU, else ``<vcpu cpuset>``; None: any."""
    vcpu = root.find("vcpu")
    if vcpu is not None and vcpu.get("placement") == "auto":
        return None
    count = str(root.xpath("string(vcpu[1])")).strip() or "1"
    if not (
        len(count) <= 6 and count.isascii() and count.isdigit() and 0 < int(count) <= MAX_VCPUS
    ):
        return "invalid"
    pins: dict[int, str | None] = {}
    for pin in root.findall("cputune/vcpupin"):
        number = pin.get("vcpu", "")
        if len(number) <= 6 and number.isascii() and number.isdigit() and int(number) < int(count):
            if int(number) in pins:
                return "invalid"
            pins[int(number)] = pin.get("cpuset")
    allowed: set[int] = set()
    for cpuset in pins.values():
        parsed = libvirt_cpuset(cpuset if cpuset is not None else "")
        if isinstance(parsed, str):
            return "invalid"
        allowed |= parsed
    if len(pins) < int(count):
        default = vcpu.get("cpuset") if vcpu is not None else None
        if default is None:
            return None
        parsed = libvirt_cpuset(default)
        if isinstance(parsed, str):
            return "invalid"
        allowed |= parsed
    return allowed
