"""What the hook needs from a domain XML: the pool metadata and the CPUs its vCPUs may use.

libvirt waits for the hook on every start, restore and incoming migration, so this
reads the XML with expat (a C module that imports in microseconds) instead of lxml
(which costs twice Python's own start-up). It reads the target list, timer frequency
and register values of the pool element (``qemu_errata.vmm.pool_element`` writes it; a
test keeps the two in step), and refuses a DOCTYPE outright: libvirt never sends one,
and without a DTD no entity can be declared or fetched.
"""

from __future__ import annotations

from xml.parsers import expat

from qemu_errata.core.pool_namespace import POOL_NAMESPACE
from qemu_errata.errors import DomainXmlError

NAMESPACE = POOL_NAMESPACE
VERSION = "1"

# expat names a namespaced element "<namespace URI> <local name>".
_POOL = f"domain/metadata/{NAMESPACE} pool"
_TARGET = f"{_POOL}/{NAMESPACE} targets/{NAMESPACE} implementation"
_TIMER = f"{_POOL}/{NAMESPACE} timer"
_REGISTERS = f"{_POOL}/{NAMESPACE} registers"
_REGISTER = f"{_REGISTERS}/{NAMESPACE} register"
_VCPU = "domain/vcpu"
_VCPU_PATH = _VCPU.split("/")
_VCPUPIN = "domain/cputune/vcpupin"


class Target:
    """One entry of the VM's target implementation list (None: any value)."""

    __slots__ = ("aidr", "midr", "revidr")

    def __init__(self, midr: int, revidr: int | None, aidr: int | None) -> None:
        self.midr = midr
        self.revidr = revidr
        self.aidr = aidr

    def admits(self, midr: int, revidr: int) -> bool:
        """A host CPU matches on MIDR, and on REVIDR where the list gives one.

        AIDR is not compared: Linux does not publish it in sysfs.
        """
        return self.midr == midr and self.revidr in (None, revidr)


class Pool:
    """The pool metadata of a domain: target list, timer frequency, register values by group."""

    __slots__ = ("registers", "targets", "timer_frequency_hz")

    def __init__(
        self,
        targets: list[Target],
        timer_frequency_hz: int | None,
        registers: dict[str, dict[str, int]],
    ) -> None:
        self.targets = targets
        self.timer_frequency_hz = timer_frequency_hz
        self.registers = registers


class Domain:
    """A domain's pool metadata (None: not a pool VM) and allowed CPUs (None: any)."""

    __slots__ = ("cpus", "pool")

    def __init__(self, pool: Pool | None, cpus: frozenset[int] | None) -> None:
        self.pool = pool
        self.cpus = cpus


def read_domain(xml: bytes) -> Domain:
    """The facts the hook checks; DomainXmlError naming the problem otherwise."""
    reader = _Reader()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.characters
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as error:
        raise DomainXmlError(f"the domain XML is not well-formed: {error}") from None
    return reader.domain()


def parse_cpuset(text: str) -> frozenset[int]:
    """libvirt's cpuset syntax: ``0-3,6,^2`` (numbers, ranges, ``^`` excludes a number)."""
    included: set[int] = set()
    excluded: set[int] = set()
    for raw in text.split(","):
        item = raw.strip()
        if item.startswith("^"):
            excluded.add(_cpu_number(item[1:], text))
            continue
        first, _, last = item.partition("-")
        start = _cpu_number(first, text)
        end = _cpu_number(last, text) if last else start
        if end < start:
            raise DomainXmlError(f"cpuset {text!r}: range {item!r} is empty")
        included.update(range(start, end + 1))
    cpus = frozenset(included - excluded)
    if not cpus:
        raise DomainXmlError(f"cpuset {text!r} names no CPU")
    return cpus


def _cpu_number(text: str, cpuset: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        raise DomainXmlError(f"cpuset {cpuset!r} is not a list of CPU numbers and ranges")
    return int(text)


def _refuse_doctype(name: str, *_: object) -> None:
    raise DomainXmlError(f"the domain XML has a DOCTYPE ({name}); libvirt never sends one")


class _Reader:
    """expat callbacks collecting the facts by element path."""

    def __init__(self) -> None:
        self.path: list[str] = []
        self.vcpu_text = ""
        self.pools = 0
        self.version: str | None = None
        self.targets: list[Target] = []
        self.timer: int | None = None
        self.group = ""
        self.registers: dict[str, dict[str, int]] = {}
        self.vcpu: dict[str, str] = {}
        self.pins: dict[str, str] = {}

    def start(self, name: str, attributes: dict[str, str]) -> None:
        if not self.path and name != "domain":
            raise DomainXmlError(f"the root element is <{name}>, not <domain>")
        self.path.append(name)
        where = "/".join(self.path)
        if where == _POOL:
            self.pools += 1
            self.version = attributes.get("version")
        elif where == _TARGET:
            self.targets.append(
                Target(
                    _number(attributes, "implementation", "midr"),
                    _optional_number(attributes, "implementation", "revidr"),
                    _optional_number(attributes, "implementation", "aidr"),
                )
            )
        elif where == _TIMER:
            self.timer = _number(attributes, "timer", "frequency", 10)
        elif where == _REGISTERS:
            self.group = attributes.get("group", "")
            self.registers.setdefault(self.group, {})
        elif where == _REGISTER:
            name = attributes.get("name", "")
            self.registers[self.group][name] = _number(attributes, "register", "value")
        elif where == _VCPU:
            self.vcpu = attributes
        elif where == _VCPUPIN:
            self.pins[attributes.get("vcpu", "")] = attributes.get("cpuset", "")

    def end(self, _name: str) -> None:
        self.path.pop()

    def characters(self, data: str) -> None:
        if self.path == _VCPU_PATH:
            self.vcpu_text += data

    def domain(self) -> Domain:
        pool = self.pool()
        cpus = None if pool is None else self.allowed_cpus()  # only a pool VM is checked
        return Domain(pool, cpus)

    def pool(self) -> Pool | None:
        if not self.pools:
            return None
        if self.pools > 1:
            raise DomainXmlError("the domain has two qemu-errata pool metadata elements")
        if self.version != VERSION:
            raise DomainXmlError(f"pool metadata version {self.version!r} is not {VERSION}")
        if not self.targets:
            raise DomainXmlError("pool metadata lists no target implementation")
        return Pool(self.targets, self.timer, self.registers)

    def allowed_cpus(self) -> frozenset[int] | None:
        """The union of every vCPU's pinning; None when some vCPU may run anywhere."""
        if self.vcpu.get("placement") == "auto":
            return None  # numad chooses at start: any CPU
        count = self.vcpu_text.strip() or "1"
        if not (count.isascii() and count.isdigit() and int(count) > 0):
            raise DomainXmlError(f"<vcpu> {count!r} is not a number of vCPUs")
        vcpus = int(count)
        pinned = [
            parse_cpuset(cpuset)
            for vcpu, cpuset in self.pins.items()
            if vcpu.isascii() and vcpu.isdigit() and int(vcpu) < vcpus
        ]
        if len(pinned) < vcpus:  # some vCPU follows <vcpu cpuset>, or may run anywhere
            default = self.vcpu.get("cpuset")
            if default is None:
                return None
            pinned.append(parse_cpuset(default))
        return frozenset().union(*pinned)


def _optional_number(attributes: dict[str, str], tag: str, name: str) -> int | None:
    return None if name not in attributes else _number(attributes, tag, name)


def _number(attributes: dict[str, str], tag: str, name: str, base: int = 16) -> int:
    text = attributes.get(name)
    try:
        return int(text or "", base)
    except ValueError:
        raise DomainXmlError(f"pool metadata <{tag} {name}={text!r}> is not a number") from None
