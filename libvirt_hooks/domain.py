"""What the hook needs from a domain XML: the pool metadata and the CPUs its vCPUs may use.

libvirt waits for the hook on every start, restore and incoming migration, so this
reads the XML with expat (a C module that imports in microseconds) instead of lxml
(which costs twice Python's own start-up). It reads the target list, timer frequency
and register values of the pool element (``qemu_errata.vmm.pool_element`` writes it; a
test keeps the two in step).

It reads what libvirt (libxml2) would: character references and entities of the
internal DTD subset are expanded by expat like by libxml2; anything it could not
see (an external DTD or entity) is refused, since libvirt never sends one. Any
child of ``<metadata>`` in a pool namespace of any version (POOL_NAMESPACE_PREFIX) is our
metadata: of a version other than ours it is refused, never taken for "not a
pool VM". Everything taken from the XML is bounded (vCPU count, CPU numbers,
cpuset length, depth followed), so its cost never grows past the XML's size.
"""

from __future__ import annotations

from xml.parsers import expat

from qemu_errata.core.pool_namespace import POOL_NAMESPACE, POOL_NAMESPACE_PREFIX
from qemu_errata.errors import DomainXmlError

NAMESPACE = POOL_NAMESPACE
VERSION = "1"
MAX_CPUS = 8192  # Linux's largest NR_CPUS: no host has a CPU numbered past it
MAX_VCPUS = 4096  # far past what KVM on arm64 runs (512)
MAX_CPUSET_CHARS = 64 << 10
MAX_QUOTED = 64  # characters of a value from the XML a message shows
MAX_DEPTH = 256  # libxml2's nesting limit (without XML_PARSE_HUGE): libvirt reads no deeper

# expat names a namespaced element "<namespace URI> <local name>".
_METADATA = "domain/metadata"
_POOL = f"{_METADATA}/{NAMESPACE} pool"
_TARGET = f"{_POOL}/{NAMESPACE} targets/{NAMESPACE} implementation"
_TIMER = f"{_POOL}/{NAMESPACE} timer"
_REGISTERS = f"{_POOL}/{NAMESPACE} registers"
_REGISTER = f"{_REGISTERS}/{NAMESPACE} register"
_VCPU = "domain/vcpu"
_VCPUPIN = "domain/cputune/vcpupin"
_DEEPEST = _REGISTER.count("/") + 1  # no path of interest is deeper


def quoted(text: str) -> str:
    """``text`` for a message: quoted, and cut to MAX_QUOTED characters (saying so)."""
    if len(text) <= MAX_QUOTED:
        return repr(text)
    return f"{text[:MAX_QUOTED]!r} (and {len(text) - MAX_QUOTED} more characters)"


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
    """A domain's pool metadata (None: not a pool VM) and allowed CPUs.

    ``cpus`` is a bit mask of the CPU numbers its vCPUs may run on (bit N: CPU N;
    None: any CPU of the host).
    """

    __slots__ = ("cpus", "pool")

    def __init__(self, pool: Pool | None, cpus: int | None) -> None:
        self.pool = pool
        self.cpus = cpus


def read_domain(xml: bytes) -> Domain:
    """The facts the hook checks; DomainXmlError naming the problem otherwise."""
    reader = _Reader()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = _refuse_external_dtd
    parser.ExternalEntityRefHandler = _refuse_external_entity
    parser.SkippedEntityHandler = _refuse_skipped_entity
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.characters
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as error:
        raise DomainXmlError(f"the domain XML is not well-formed: {error}") from None
    return reader.domain()


def parse_cpuset(text: str) -> int:
    """libvirt's cpuset syntax (``0-3,6,^2``) as a bit mask: bit N set for CPU N.

    Read left to right like libvirt's ``virBitmapParse``: ``^N`` removes N from
    what the items before it named. A CPU past MAX_CPUS, or a cpuset longer
    than MAX_CPUSET_CHARS, is bad input: no mask grows past MAX_CPUS bits.
    """
    if len(text) > MAX_CPUSET_CHARS:
        raise DomainXmlError(
            f"a cpuset of {len(text)} characters is longer than {MAX_CPUSET_CHARS}"
        )
    cpus = 0
    for raw in text.split(","):
        item = raw.strip()
        if item.startswith("^"):
            cpus &= ~(1 << _cpu_number(item[1:], text))
            continue
        first, _, last = item.partition("-")
        start = _cpu_number(first, text)
        end = _cpu_number(last, text) if last else start
        if end < start:
            raise DomainXmlError(f"cpuset {quoted(text)}: range {quoted(item)} is empty")
        cpus |= ((1 << (end - start + 1)) - 1) << start
    if not cpus:
        raise DomainXmlError(f"cpuset {quoted(text)} names no CPU")
    return cpus


def _cpu_number(text: str, cpuset: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        raise DomainXmlError(f"cpuset {quoted(cpuset)} is not a list of CPU numbers and ranges")
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_CPUS)) or int(digits) >= MAX_CPUS:
        raise DomainXmlError(
            f"cpuset {quoted(cpuset)} names a CPU past {MAX_CPUS - 1}: no Linux host has one"
        )
    return int(digits)


def _refuse_external_dtd(name: str, system_id: str | None, public_id: str | None, _: int) -> None:
    if system_id is not None or public_id is not None:
        raise DomainXmlError(
            f"the domain XML refers to an external DTD (<!DOCTYPE {quoted(name)} ...>); "
            "libvirt never sends one"
        )


def _refuse_external_entity(*_: object) -> int:
    raise DomainXmlError("the domain XML refers to an external entity; libvirt never sends one")


def _refuse_skipped_entity(name: str, _is_parameter_entity: int) -> None:
    raise DomainXmlError(
        f"the domain XML refers to entity {quoted(name)}, which it does not define"
    )


class _Reader:
    """expat callbacks collecting the facts by element path (followed to _DEEPEST only)."""

    def __init__(self) -> None:
        self.path: list[str] = []
        self.depth = 0
        self.vcpu_text = ""  # all text inside the first <vcpu>, like libvirt's string(vcpu[1])
        self.vcpu_text_too_long = False
        self.in_vcpu = False
        self.vcpu_seen = False
        self.pools = 0
        self.foreign: str | None = None  # a pool-namespace element we do not understand
        self.version: str | None = None
        self.targets: list[Target] = []
        self.timer: int | None = None
        self.group = ""
        self.registers: dict[str, dict[str, int]] = {}
        self.vcpu: dict[str, str] = {}
        self.pins: dict[int, str] = {}  # by vCPU number; one past MAX_VCPUS pins nothing
        self.pinned_twice: set[int] = set()

    def start(self, name: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > _DEEPEST:
            if self.depth > MAX_DEPTH:  # expat's own stack would grow with the input
                raise DomainXmlError(f"the domain XML nests elements deeper than {MAX_DEPTH}")
            return
        if not self.path and name != "domain":
            raise DomainXmlError(f"the root element is <{quoted(name)[1:-1]}>, not <domain>")
        self.path.append(name)
        where = "/".join(self.path)
        if len(self.path) == 3 and self.path[1] == "metadata":
            self.metadata(name, attributes)
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
        elif where == _VCPU and not self.vcpu_seen:  # libvirt reads the first one
            self.vcpu, self.vcpu_seen, self.in_vcpu = attributes, True, True
        elif where == _VCPUPIN:
            self.pin(attributes.get("vcpu", ""), attributes.get("cpuset", ""))

    def pin(self, vcpu: str, cpuset: str) -> None:
        """Keep a ``<vcpupin>``: only those of vCPUs that may exist, so at most MAX_VCPUS."""
        if not (len(vcpu) <= 6 and vcpu.isascii() and vcpu.isdigit() and int(vcpu) < MAX_VCPUS):
            return  # not a vCPU number (libvirt refuses it): pins nothing, the default applies
        if int(vcpu) in self.pins:
            self.pinned_twice.add(int(vcpu))
        self.pins[int(vcpu)] = cpuset

    def metadata(self, name: str, attributes: dict[str, str]) -> None:
        """A child of ``<metadata>``: ours (any version), or another application's."""
        namespace, _, local = name.rpartition(" ")
        if not namespace.startswith(POOL_NAMESPACE_PREFIX):
            return
        self.pools += 1
        if namespace != NAMESPACE:
            self.foreign = (
                f"pool metadata of version {quoted(namespace[len(POOL_NAMESPACE_PREFIX) :])} "
                f"(namespace {quoted(namespace)}): this hook reads version {VERSION} only; "
                "install the qemu-errata release that wrote it on this host"
            )
        elif local != "pool":
            self.foreign = f"unknown element <{quoted(local)[1:-1]}> in the pool namespace"
        self.version = attributes.get("version")

    def end(self, _name: str) -> None:
        if self.depth <= _DEEPEST:
            self.path.pop()
        self.in_vcpu &= self.depth != 2
        self.depth -= 1

    def characters(self, data: str) -> None:
        if self.in_vcpu:
            self.vcpu_text_too_long |= len(self.vcpu_text) + len(data) > MAX_QUOTED
            if not self.vcpu_text_too_long:
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
        if self.foreign is not None:
            raise DomainXmlError(self.foreign)
        if self.version != VERSION:
            raise DomainXmlError(
                f"pool metadata version {quoted(self.version or '')} is not {VERSION}"
            )
        if not self.targets:
            raise DomainXmlError("pool metadata lists no target implementation")
        return Pool(self.targets, self.timer, self.registers)

    def allowed_cpus(self) -> int | None:
        """The union of every vCPU's pinning (a bit mask); None when some vCPU may run anywhere."""
        if self.vcpu.get("placement") == "auto":
            return None  # numad chooses at start: any CPU
        count = self.vcpu_text.strip() or "1"
        if self.vcpu_text_too_long or not (
            len(count) <= 6 and count.isascii() and count.isdigit() and 0 < int(count) <= MAX_VCPUS
        ):
            raise DomainXmlError(
                f"<vcpu> {quoted(count)} is not a number of vCPUs from 1 to {MAX_VCPUS}"
            )
        vcpus = int(count)
        twice = sorted(vcpu for vcpu in self.pinned_twice if vcpu < vcpus)
        if twice:
            raise DomainXmlError(f"two <vcpupin> for vCPU {twice[0]}")
        pins = {vcpu: cpuset for vcpu, cpuset in self.pins.items() if vcpu < vcpus}
        cpus = 0
        for cpuset in set(pins.values()):  # each distinct cpuset once: work bounded by the XML
            cpus |= parse_cpuset(cpuset)
        if len(pins) < vcpus:  # some vCPU follows <vcpu cpuset>, or may run anywhere
            default = self.vcpu.get("cpuset")
            if default is None:
                return None
            cpus |= parse_cpuset(default)
        return cpus


def _optional_number(attributes: dict[str, str], tag: str, name: str) -> int | None:
    return None if name not in attributes else _number(attributes, tag, name)


def _number(attributes: dict[str, str], tag: str, name: str, base: int = 16) -> int:
    text = attributes.get(name)
    try:
        return int(text or "", base)
    except ValueError:
        raise DomainXmlError(
            f"pool metadata <{tag} {name}={quoted(text or '')}> is not a number"
        ) from None
