"""Applying a VmmConfig and its pool model to a libvirt domain XML (pure: XML in, XML out).

We own three things in a domain: the ``<cpu>`` element (its attributes and the
children that choose a CPU model: ``<model>``, ``<vendor>``, ``<feature>``),
our arguments inside ``<qemu:commandline>`` (args.py's, recognised by
args.is_our_argument, so a user's own arguments stay), and our pool element
under ``<metadata>`` (pool_element.py's). The templates in ``xml_templates/``
hold the first two per dialect. Everything else, devices, other metadata and
other namespaces, is left as it was; applying a model twice gives the same
document as applying it once, and applying a new model replaces the old one's
parts.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources

from lxml import etree

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.pool import PoolModel
from qemu_errata.errors import InputError
from qemu_errata.vmm.args import commandline_arguments, is_our_argument
from qemu_errata.vmm.dialects import Dialect, VmmConfig
from qemu_errata.vmm.names import CPU_FEATURE_FIELDS
from qemu_errata.vmm.pool_element import find_pool_element, pool_element, saved_user_cpu
from qemu_errata.vmm.xml_parser import parse_xml

QEMU_NAMESPACE = "http://libvirt.org/schemas/domain/qemu/1.0"
COMMANDLINE_TAG = f"{{{QEMU_NAMESPACE}}}commandline"
ARG_TAG = f"{{{QEMU_NAMESPACE}}}arg"

_DOMAIN_TYPE = {Dialect.QEMU_KVM: "kvm", Dialect.QEMU_TCG: "qemu"}
_ARCH = "aarch64"
# <cpu> children that choose the CPU model: the template's replace them. The user's
# <feature> elements stay where they agree with the model (check_cpu_features).
_CPU_MODEL_CHILDREN = ("model", "vendor")
_REQUIRING_POLICIES = ("require", "force")
_REFUSING_POLICIES = ("disable", "forbid")
# Where a new element goes, in libvirt's own element order (libvirt itself accepts any).
_AFTER_METADATA = ("name", "uuid", "genid", "title", "description")
_AFTER_CPU = ("clock", "on_poweroff", "on_reboot", "on_crash", "on_lockfailure", "pm", "devices")


def parse_domain(data: bytes, origin: str) -> etree._ElementTree:
    """The parsed domain XML; InputError naming ``origin`` if it is not well-formed."""
    return etree.ElementTree(parse_xml(data, origin))


def serialise(tree: etree._ElementTree) -> str:
    return etree.tostring(tree, encoding="unicode")


def dialect_of(domain: etree._Element, origin: str) -> Dialect:
    """The dialect a domain's type runs."""
    _check_root(domain, origin)
    for dialect, domain_type in _DOMAIN_TYPE.items():
        if domain.get("type") == domain_type:
            return dialect
    kind = domain.get("type")
    said = "has no type attribute" if kind is None else f"is of type {kind!r}"
    raise InputError(f"{origin}: the domain {said}; qemu-kvm runs type 'kvm', qemu-tcg type 'qemu'")


def apply_model(domain: etree._Element, model: PoolModel, config: VmmConfig, origin: str) -> None:
    """Set our ``<cpu>``, qemu:commandline arguments and metadata in ``domain``."""
    _check_domain(domain, config.dialect, origin)
    check_cpu_features(domain, model, origin)
    _apply(domain, model, config, _user_cpu(domain))


def domain_cpu_model(domain: etree._Element) -> str | None:
    """The CPU model a domain names (``<cpu mode='custom'><model>``), if it names one."""
    cpu = domain.find("cpu")
    if cpu is None or cpu.get("mode", "custom") != "custom":
        return None
    return (cpu.findtext("model") or "").strip() or None


def describe_cpu(domain: etree._Element) -> str | None:
    """How a domain chooses its CPU, in words; None without a ``<cpu>`` that chooses one."""
    cpu = domain.find("cpu")
    if cpu is None:
        return None
    mode = cpu.get("mode", "custom")
    named = domain_cpu_model(domain)
    if mode == "custom" and named is None:
        return None
    return f"CPU model {named} (mode custom)" if named else f"mode {mode}"


def check_cpu_features(domain: etree._Element, model: PoolModel, origin: str) -> None:
    """InputError for a ``<cpu><feature>`` the model contradicts or that we cannot judge."""
    catalogue = load_catalogue()
    for feature in domain.iterfind("cpu/feature"):
        name, policy = feature.get("name", ""), feature.get("policy", "require")
        if policy not in _REQUIRING_POLICIES + _REFUSING_POLICIES:
            continue
        shown = f"{origin}: <feature policy='{policy}' name='{name}'/>"
        fields = CPU_FEATURE_FIELDS.get(_feature_family(name))
        if fields is None:
            raise InputError(
                f"{shown}: qemu-errata cannot tell which ID register fields it changes"
            )
        # A register the model does not give is each host's own: the domain may choose.
        values = [
            (field, field.raw(model.id_registers[register]))
            for register, field_name in fields
            if register in model.id_registers
            for field in (catalogue[register].field(field_name),)
        ]
        if not values:
            continue
        present = any(raw for _, raw in values)
        if present != (policy in _REQUIRING_POLICIES):
            said = ", ".join(f"{f.qualified_name} = {f.describe(raw)}" for f, raw in values)
            raise InputError(f"{shown} contradicts the model, which has {said}")


def _feature_family(name: str) -> str:
    """``sve128`` is a vector length of ``sve``."""
    return "sve" if name.startswith("sve") and name[3:].isdigit() else name


def owned_parts(model: PoolModel, config: VmmConfig) -> str:
    """Without a domain to apply to: the elements we own, in a bare ``<domain>``."""
    domain = etree.Element("domain", type=_DOMAIN_TYPE[config.dialect])
    domain.text = "\n  "
    _apply(domain, model, config, None)
    return serialise(etree.ElementTree(domain))


def remove_model(domain: etree._Element, origin: str) -> None:
    """Take our parts off ``domain`` and give back the ``<cpu>`` it had before apply.

    InputError when the domain carries no pool model, or one applied before
    apply recorded the domain's own CPU (then there is nothing to give back).
    """
    _check_root(domain, origin)
    pool = find_pool_element(domain)
    if pool is None:
        raise InputError(f"{origin}: the domain carries no pool model")
    user_cpu = saved_user_cpu(pool)
    if user_cpu is None:
        raise InputError(
            f"{origin}: its pool model does not record the domain's own <cpu>; apply it again "
            "with this version first"
        )
    layout = _Layout.of(domain)
    _restore_cpu(domain, user_cpu, origin, layout)
    for commandline in domain.findall(COMMANDLINE_TAG):
        _remove_our_arguments(commandline, layout)
        if not len(commandline):
            layout.remove(commandline)
    metadata = pool.getparent()
    assert metadata is not None
    layout.remove(pool)
    if not len(metadata):
        layout.remove(metadata)


def _restore_cpu(domain: etree._Element, saved: str, origin: str, layout: _Layout) -> None:
    """Our ``<cpu>`` attributes and model children back to the saved ones; the rest stays."""
    cpu = domain.find("cpu")
    if not saved:
        if cpu is not None:
            layout.remove(cpu)
        return
    user = parse_xml(saved.encode("utf-8"), f"{origin}: the saved <cpu>", remove_blank_text=True)
    if cpu is not None and _not_ours(cpu) == _not_ours(user):
        user.tail = cpu.tail  # the rest is as it was: all of it back, in its order
        domain.replace(cpu, user)
        layout.settle(user)
        return
    _set_cpu(domain, user, layout)


def _not_ours(cpu: etree._Element) -> list[bytes]:
    """The children of a ``<cpu>`` that apply leaves alone (topology, cache, numa, ...)."""
    return [
        etree.tostring(c, method="c14n", exclusive=True, with_tail=False)
        for c in cpu
        if c.tag not in _CPU_MODEL_CHILDREN
    ]


def _user_cpu(domain: etree._Element) -> str:
    """The ``<cpu>`` that unapply gives back: recorded at the first apply, kept after."""
    pool = find_pool_element(domain)
    saved = None if pool is None else saved_user_cpu(pool)
    if saved is not None:
        return saved
    cpu = domain.find("cpu")
    if cpu is None:
        return ""
    bare = copy.deepcopy(cpu)
    bare.tail = None
    return etree.tostring(bare, encoding="unicode")


def _apply(
    domain: etree._Element, model: PoolModel, config: VmmConfig, user_cpu: str | None
) -> None:
    template = _template(config.dialect)
    layout = _Layout.of(domain)
    cpu = copy.deepcopy(template.find("cpu"))
    assert cpu is not None  # the packaged templates have one
    for named in cpu.iter("model"):
        named.text = config.cpu_model
    _set_cpu(domain, cpu, layout)
    commandline = template.find(COMMANDLINE_TAG)
    assert commandline is not None
    _set_arguments(domain, commandline, commandline_arguments(config), layout)
    _set_pool_element(domain, pool_element(model, user_cpu), layout)


def _check_root(domain: etree._Element, origin: str) -> None:
    if domain.tag != "domain":
        raise InputError(f"{origin}: not a libvirt domain (the root element is <{domain.tag}>)")


def _check_domain(domain: etree._Element, dialect: Dialect, origin: str) -> None:
    _check_root(domain, origin)
    wanted = _DOMAIN_TYPE[dialect]
    if domain.get("type") != wanted:
        raise InputError(
            f"{origin}: a domain of type {domain.get('type')!r} cannot run {dialect.value}, "
            f"which needs type {wanted!r}"
        )
    os_type = domain.find("os/type")
    arch = None if os_type is None else os_type.get("arch")
    if arch != _ARCH:
        raise InputError(f"{origin}: the domain's architecture is {arch!r}, not {_ARCH!r}")


@functools.cache
def _template(dialect: Dialect) -> etree._Element:
    """The packaged template of ``dialect`` (shared: deep-copy what goes into a domain)."""
    name = f"{dialect.value}.xml"
    data = resources.files("xml_templates").joinpath(name).read_bytes()
    # Without its own whitespace: an element takes the indentation of the domain it goes to.
    return parse_xml(data, f"xml_templates/{name}", remove_blank_text=True)


def _set_cpu(domain: etree._Element, source: etree._Element, layout: _Layout) -> None:
    """``source``'s attributes and model children into the domain's ``<cpu>``; the rest stays."""
    cpu = domain.find("cpu")
    if cpu is None:
        domain.insert(_index_before(domain, _AFTER_CPU), source)
        layout.settle(source)
        return
    cpu.attrib.clear()
    cpu.attrib.update(source.attrib)
    for child in [c for c in cpu if c.tag in _CPU_MODEL_CHILDREN]:
        layout.remove(child)
    for index, child in enumerate([c for c in source if c.tag in _CPU_MODEL_CHILDREN]):
        cpu.insert(index, child)
        layout.settle(child)


def _set_arguments(
    domain: etree._Element, template: etree._Element, arguments: list[str], layout: _Layout
) -> None:
    commandlines = domain.findall(COMMANDLINE_TAG)
    for commandline in commandlines:
        _remove_our_arguments(commandline, layout)
    if commandlines:
        commandline = commandlines[0]
    else:
        commandline = copy.deepcopy(template)
        domain.append(commandline)
        layout.settle(commandline)
    # After the last qemu:arg, before any qemu:env, as libvirt writes them.
    index = _index_after(commandline, (ARG_TAG,))
    for offset, value in enumerate(arguments):
        argument = etree.Element(ARG_TAG, value=value)
        commandline.insert(index + offset, argument)
        layout.settle(argument)


def _remove_our_arguments(commandline: etree._Element, layout: _Layout) -> None:
    """Remove each ``option value`` pair of qemu:arg that we render, and nothing else."""
    arguments = commandline.findall(ARG_TAG)
    index = 0
    while index + 1 < len(arguments):
        option, value = arguments[index], arguments[index + 1]
        if is_our_argument(option.get("value", ""), value.get("value", "")):
            layout.remove(option)
            layout.remove(value)
            index += 2
        else:
            index += 1


def _set_pool_element(domain: etree._Element, pool: etree._Element, layout: _Layout) -> None:
    old = find_pool_element(domain)
    if old is not None:
        parent = old.getparent()
        assert parent is not None
        parent.replace(old, pool)
        layout.settle(pool)
        return
    metadata = domain.find("metadata")
    if metadata is None:
        metadata = etree.Element("metadata")
        domain.insert(_index_after(domain, _AFTER_METADATA), metadata)
        layout.settle(metadata)
    metadata.append(pool)
    layout.settle(pool)


def _index_after(parent: etree._Element, tags: tuple[str, ...]) -> int:
    """The index after the last child tagged one of ``tags`` (0 without one)."""
    return max((i + 1 for i, child in enumerate(parent) if child.tag in tags), default=0)


def _index_before(parent: etree._Element, tags: tuple[str, ...]) -> int:
    """The index of the first child tagged one of ``tags`` (the end without one)."""
    return next((i for i, child in enumerate(parent) if child.tag in tags), len(parent))


class _Layout:
    """The document's indentation, kept around the elements we insert or remove.

    A compact document (no whitespace between elements) stays compact.
    """

    def __init__(self, unit: str | None) -> None:
        self.unit = unit

    @classmethod
    def of(cls, domain: etree._Element) -> _Layout:
        text = domain.text or ""
        if "\n" not in text or text.strip():
            return cls(None)
        return cls(text.rsplit("\n", 1)[1] or None)

    def _indent(self, depth: int) -> str:
        assert self.unit is not None
        return "\n" + self.unit * depth

    def settle(self, element: etree._Element) -> None:
        """Indent a newly placed element, its subtree and its neighbours' whitespace."""
        if self.unit is None:
            return
        parent = element.getparent()
        assert parent is not None
        depth = sum(1 for _ in element.iterancestors())
        etree.indent(element, space=self.unit, level=depth)
        previous = element.getprevious()
        if previous is None:
            parent.text = self._indent(depth)
        else:
            previous.tail = self._indent(depth)
        element.tail = self._indent(depth if element.getnext() is not None else depth - 1)

    def remove(self, element: etree._Element) -> None:
        """Remove an element and keep the whitespace that closes its parent."""
        parent = element.getparent()
        assert parent is not None
        previous = element.getprevious()
        if self.unit is not None and element.getnext() is None:
            if previous is not None:
                previous.tail = element.tail
            else:
                parent.text = None
        parent.remove(element)
