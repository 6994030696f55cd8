"""What the hook needs from a domain XML: the pool metadata and the CPUs its vCPUs may use.

libvirt waits for the hook on every start, restore and incoming migration, so this
reads the XML with expat (a C module that imports in microseconds) instead of lxml
(which costs twice Python's own start-up). It reads the target list, timer frequency
and register values of the pool element (``qemu_errata.vmm.pool_element`` writes it;
both spell it from ``core.pool_namespace``).

The reading rule: the hook decides only on documents it reads exactly as libvirt
does. A document that could not name the pool namespace in any encoding
(``libvirt_hooks.encodings``) is no pool VM and is not parsed. Any other document
is refused, with one line saying why, when it has a DOCTYPE (libvirt never writes
one; expat and libxml2 differ on entities holding markup and on declarations after a
parameter-entity reference, so no entity or attribute default is trusted), is in
an encoding outside ``READ_BY_THE_HOOK``, or holds MAX_RUN bytes in a row without
markup (an attribute value that long would cost memory past a small multiple of
the input, whatever expat then does with it). Elements are matched by (namespace, local
name) pairs, never by joined strings: a namespace URI may hold any character. Any
child of ``<metadata>`` in a pool namespace of any version (POOL_NAMESPACE_PREFIX)
is our metadata: of a version other than ours it is refused, never taken for "not
a pool VM". Everything taken from the XML is bounded (vCPU count, CPU numbers,
cpuset length, depth followed), so its cost never grows past the XML's size.
"""

from __future__ import annotations

from xml.parsers import expat

from libvirt_hooks.encodings import READ_BY_THE_HOOK, may_name_the_pool, unread_encoding
from qemu_errata.core import pool_namespace as vocabulary
from qemu_errata.core.pool_namespace import (
    POOL_NAMESPACE,
    POOL_NAMESPACE_PREFIX,
    REGISTER_GROUPS,
    VERSION,
)
from qemu_errata.errors import DomainXmlError

NAMESPACE = POOL_NAMESPACE
MAX_CPUS = 8192  # Linux's largest NR_CPUS: no host has a CPU numbered past it
MAX_VCPUS = 4096  # far past what KVM on arm64 runs (512)
MAX_CPUSET_CHARS = 64 << 10
MAX_QUOTED = 64  # characters of a value from the XML a message shows
PINNED_IDENTITY = "MIDR_EL1"  # core.midr.MIDR_REGISTER, spelled here to keep the hook light
MAX_ACCEPTED = 256  # accepted lost mitigations kept (the errata tables name far fewer)
# Bytes in a row without '<' that refuse a document: an attribute value costs expat and
# Python up to 6x its size, so none may come near MAX_XML_BYTES (no run of 2 * MAX_RUN
# passes, see _has_a_long_run).
MAX_RUN = 1 << 20
MAX_DEPTH = 256  # libxml2's nesting limit (without XML_PARSE_HUGE): libvirt reads no deeper
_READ_ENCODINGS = frozenset(name.lower() for name in READ_BY_THE_HOOK)

Name = tuple[str, str]  # (namespace URI, "" for none; local name)
_DOMAIN: Name = ("", "domain")
_METADATA = (_DOMAIN, ("", "metadata"))
_POOL = (*_METADATA, (NAMESPACE, vocabulary.POOL))
_TARGET = (*_POOL, (NAMESPACE, vocabulary.TARGETS), (NAMESPACE, vocabulary.IMPLEMENTATION))
_TIMER = (*_POOL, (NAMESPACE, vocabulary.TIMER))
_REGISTERS = (*_POOL, (NAMESPACE, vocabulary.REGISTERS))
_REGISTER = (*_REGISTERS, (NAMESPACE, vocabulary.REGISTER))
_ACCEPTED = (*_POOL, (NAMESPACE, vocabulary.ACCEPTED))
_VCPU = (_DOMAIN, ("", "vcpu"))
_VCPUPIN = (_DOMAIN, ("", "cputune"), ("", "vcpupin"))
# expat's names of the children of <domain> that matter (none of them in a namespace).
_DOMAIN_CHILDREN = frozenset(
    local for path in (_METADATA, _VCPU, _VCPUPIN) for namespace, local in path[1:2]
)
# The elements whose children matter; below any other, the reader only counts depth.
_FOLLOWED = frozenset({(_DOMAIN,), _METADATA, _POOL, _TARGET[:-1], _REGISTERS, _VCPUPIN[:-1]})
_SEPARATOR = " "  # expat names a namespaced element "<namespace URI> <local name>"


def name_pair(name: str) -> Name:
    """expat's element name as (namespace, local name): a local name holds no separator."""
    namespace, _, local = name.rpartition(_SEPARATOR)
    return namespace, local


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

    __slots__ = ("accepted", "registers", "targets", "timer_frequency_hz")

    def __init__(
        self,
        targets: list[Target],
        timer_frequency_hz: int | None,
        registers: dict[str, dict[str, int]],
        accepted: list[str] | None = None,
    ) -> None:
        self.targets = targets
        self.timer_frequency_hz = timer_frequency_hz
        self.registers = registers
        self.accepted = accepted or []  # lost mitigations the model accepts, by name

    def could_lose_mitigations(self) -> bool:
        """Several target implementations, or a pinned MIDR: its guests could skip a
        mitigation some host needs (``hazardcheck`` reads the errata tables only then)."""
        return len(self.targets) > 1 or any(PINNED_IDENTITY in g for g in self.registers.values())


class Domain:
    """A domain's pool metadata (None: not a pool VM) and allowed CPUs.

    ``cpus`` is a bit mask of the CPU numbers its vCPUs may run on (bit N: CPU N;
    None: any CPU of the host).
    """

    __slots__ = ("cpus", "pool")

    def __init__(self, pool: Pool | None, cpus: int | None) -> None:
        self.pool = pool
        self.cpus = cpus


def read_domain(xml: bytes | bytearray) -> Domain:
    """The facts the hook checks; DomainXmlError naming the problem otherwise."""
    if not may_name_the_pool(xml):
        return Domain(None, None)
    encoding = unread_encoding(xml)
    if encoding is not None:
        raise _unread(encoding)
    if _has_a_long_run(xml):
        raise DomainXmlError(
            f"the domain XML has {MAX_RUN} bytes in a row without markup: the hook reads no "
            "text or attribute value that long (libvirt writes none)"
        )
    reader = _Reader()
    parser = expat.ParserCreate(namespace_separator=_SEPARATOR)
    parser.XmlDeclHandler = _refuse_unread_encoding
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.characters
    try:
        parser.Parse(xml, True)
    except expat.ExpatError as error:
        raise DomainXmlError(f"the domain XML is not well-formed: {error}") from None
    return reader.domain()


def _has_a_long_run(xml: bytes | bytearray) -> bool:
    """Whether a block of MAX_RUN bytes at a multiple of MAX_RUN holds no '<' (so every run
    of 2 * MAX_RUN is found; in the encodings the hook reads, a byte '<' is a '<')."""
    return any(
        xml.find(b"<", start, start + MAX_RUN) < 0
        for start in range(0, len(xml) - MAX_RUN + 1, MAX_RUN)
    )


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


def _refuse_doctype(name: str, *_: object) -> None:
    raise DomainXmlError(
        f"the domain XML has a DOCTYPE (<!DOCTYPE {quoted(name)[1:-1]} ...>), which libvirt "
        "never writes: the hook decides only on documents it reads exactly as libvirt does"
    )


def _refuse_unread_encoding(_version: str, encoding: str | None, _standalone: int) -> None:
    if encoding is not None and encoding.lower() not in _READ_ENCODINGS:
        raise _unread(quoted(encoding))


def _unread(encoding: str) -> DomainXmlError:
    return DomainXmlError(
        f"the domain XML is encoded in {encoding}, which the hook does not read "
        f"(it reads {', '.join(READ_BY_THE_HOOK)}; libvirt writes UTF-8)"
    )


class _Reader:
    """expat callbacks collecting the facts by element path (followed into _FOLLOWED only)."""

    def __init__(self) -> None:
        self.path: list[Name] = []  # of the innermost followed element
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
        self.timers = 0
        self.group = ""
        self.registers: dict[str, dict[str, int]] = {}
        self.accepted: list[str] = []
        self.vcpu: dict[str, str] = {}
        self.pins: dict[int, str] = {}  # by vCPU number; one past MAX_VCPUS pins nothing
        self.pinned_twice: set[int] = set()

    def start(self, name: str, attributes: dict[str, str]) -> None:
        self.depth += 1
        if self.depth > len(self.path) + 1:  # inside an element of no interest
            if self.depth > MAX_DEPTH:  # expat's own stack would grow with the input
                raise DomainXmlError(f"the domain XML nests elements deeper than {MAX_DEPTH}")
            return
        if self.depth == 2 and name not in _DOMAIN_CHILDREN:  # most elements: return at once
            return
        pair = name_pair(name)
        if not self.path and pair != _DOMAIN:
            raise DomainXmlError(f"the root element is <{quoted(name)[1:-1]}>, not <domain>")
        where = (*self.path, pair)
        if where in _FOLLOWED:
            self.path.append(pair)
        self.fact(where, attributes)

    def fact(self, where: tuple[Name, ...], attributes: dict[str, str]) -> None:
        """Keep what the element at ``where`` says, if the hook needs it."""
        if where[:2] == _METADATA and len(where) == len(_POOL):
            self.metadata(where[-1], attributes)
        elif where == _TARGET:
            self.targets.append(
                Target(
                    _number(attributes, vocabulary.IMPLEMENTATION, vocabulary.MIDR),
                    _optional_number(attributes, vocabulary.IMPLEMENTATION, vocabulary.REVIDR),
                    _optional_number(attributes, vocabulary.IMPLEMENTATION, vocabulary.AIDR),
                )
            )
        elif where == _TIMER:
            self.timers += 1
            self.timer = _number(
                attributes, vocabulary.TIMER, vocabulary.FREQUENCY, vocabulary.DECIMAL
            )
        elif where == _REGISTERS:
            self.group = attributes.get(vocabulary.GROUP, "")
            if self.group not in REGISTER_GROUPS:
                raise DomainXmlError(
                    f"pool metadata has unknown register group {quoted(self.group)} "
                    f"(known: {', '.join(REGISTER_GROUPS)})"
                )
            self.registers.setdefault(self.group, {})
        elif where == _REGISTER:
            register = attributes.get(vocabulary.NAME, "")
            value = _number(attributes, vocabulary.REGISTER, vocabulary.VALUE)
            self.registers[self.group][register] = value
        elif where == _ACCEPTED and len(self.accepted) < MAX_ACCEPTED:
            self.accepted.append(attributes.get(vocabulary.NAME, "")[:MAX_QUOTED])
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

    def metadata(self, name: Name, attributes: dict[str, str]) -> None:
        """A child of ``<metadata>``: ours (any version), or another application's."""
        namespace, local = name
        if not namespace.startswith(POOL_NAMESPACE_PREFIX):
            return
        self.pools += 1
        if namespace != NAMESPACE:
            self.foreign = (
                f"pool metadata of version {quoted(namespace[len(POOL_NAMESPACE_PREFIX) :])} "
                f"(namespace {quoted(namespace)}): this hook reads version {VERSION} only; "
                "install the qemu-errata release that wrote it on this host"
            )
        elif local != vocabulary.POOL:
            self.foreign = f"unknown element <{quoted(local)[1:-1]}> in the pool namespace"
        self.version = attributes.get(vocabulary.VERSION_ATTRIBUTE)

    def end(self, _name: str) -> None:
        if self.depth == len(self.path):
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
        if self.timers > 1:
            raise DomainXmlError("pool metadata has two <timer> elements")
        return Pool(self.targets, self.timer, self.registers, self.accepted)

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


def _number(attributes: dict[str, str], tag: str, name: str, base: int = vocabulary.HEX) -> int:
    text = attributes.get(name)
    try:
        return int(text or "", base)
    except ValueError:
        raise DomainXmlError(
            f"pool metadata <{tag} {name}={quoted(text or '')}> is not a number"
        ) from None
