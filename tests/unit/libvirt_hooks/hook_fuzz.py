"""Fuzzing the libvirt hook in-process against an independent lxml oracle.

Each case is a real pool (or plain) domain XML, made by the product's own
``pool_element``, mutated the way an attacker would spell it (character
references and DOCTYPE entities in the namespace, other metadata versions, other
encodings, prefixes, comments, cpusets and vcpupins, truncation), with libvirt's
argv and one of a few fake hosts (sysfs trees, some broken). ``libvirt_hooks.qemu.main``
runs in this process with the XML on fd 0 and its stdout and stderr captured.

The oracle parses the same bytes with lxml configured as libvirt configures
libxml2 (``support.pool_oracle``: no entity substitution, no DTD loading) and
applies libvirt's semantics: a pool VM has a child of ``domain/metadata`` in a
namespace ``urn:qemu-errata:pool:N``; a valid one of version 1 is allowed only
when every CPU its cpuset and vcputune allow is a host CPU admitted by its
targets; and, by the hook's reading rule, a pool VM with a DOCTYPE or in an
encoding other than UTF-8, US-ASCII or ISO-8859-1 is refused. Counted: fail-open
(the oracle refuses, the hook allows), pool VMs refused although valid and
admitted, refusals by the reading rule, non-pool VMs refused, tracebacks, output
on stdout, disclosure (a planted file's content in a message) and slow cases; and
the cases and failures of each mutation class (the round-3 classes: declarations
after a parameter entity, entities holding markup, namespace URIs holding '/',
declared encodings expat cannot read, unknown register groups, entity
amplification).

Run: ``scripts/fuzz hook --cases 100000`` (or ``python hook_fuzz.py --cases N``);
the default suite runs a short one (test_hook_fuzz.py).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import itertools
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from support.pool_oracle import PoolFacts, libvirt_parser, libvirt_view

from libvirt_hooks import qemu as hook
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.pool_namespace import POOL_NAMESPACE, POOL_NAMESPACE_PREFIX
from qemu_errata.testbed.sysfs_tree import write_cpu_identity
from qemu_errata.vmm.pool_element import pool_element

N1, A76, A64FX = 0x414FD0C1, 0x414FD0B1, 0x461F0010
MIDRS = (N1, A76, A64FX)
SECRET = "root:$6$planted-secret-line:19000:0:99999:7:::"
MAX_CPUS = 8192  # the oracle's own bound: libvirt's hosts have no CPU past it
SLOW_SECONDS = 2.0
GUARDED = {("migrate", "begin"), ("restore", "begin"), ("prepare", "begin")}
OPS = [*sorted(GUARDED), ("started", "begin"), ("stopped", "end"), ("migrate", "end")]


# --- the fake hosts --------------------------------------------------------------------


@dataclass(frozen=True)
class FakeHost:
    """A HOME with hook.toml and a sysfs tree; ``cpus``: CPU -> (MIDR, REVIDR), None: unreadable."""

    home: Path
    cpus: dict[int, tuple[int, int] | None]
    policy: str
    timer: int | None


HOST_SHAPES: list[tuple[dict[int, tuple[int, int] | None], str, int | None]] = [
    (dict.fromkeys(range(4), (N1, 0)), "enforce", None),
    ({0: (N1, 0), 1: (N1, 0), 2: (A76, 1), 3: (A76, 1)}, "enforce", 25_000_000),
    ({0: (A64FX, 0), 1: (A64FX, 0)}, "enforce", None),
    ({0: (N1, 0), 1: None, 2: (N1, 0)}, "enforce", None),  # CPU 1's register is garbage
    (dict.fromkeys(range(4), (N1, 0)), "warn", None),
    ({0: (A76, 0), 1: (A64FX, 0)}, "ignore", None),
]


def make_hosts(base: Path) -> list[FakeHost]:
    hosts = []
    for index, (cpus, policy, timer) in enumerate(HOST_SHAPES):
        home = base / f"host{index}"
        for cpu, identity in cpus.items():
            regs = write_cpu_identity(home / "sys", cpu, *(identity or (0, 0)))
            if identity is None:  # files the hook must not disclose when it cannot parse them
                (regs / "midr_el1").write_text(SECRET + "\n")
                (regs / "revidr_el1").write_text(SECRET + "\n")
        settings_ = {"sysfs_root": str(home / "sys"), "log": str(home / "hook.log")}
        settings_["start_policy"] = policy
        if timer is not None:
            settings_["timer_frequency_hz"] = timer  # type: ignore[assignment]
        config = home / ".config/qemu-errata/hook.toml"
        config.parent.mkdir(parents=True)
        config.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings_.items()))
        hosts.append(FakeHost(home, cpus, policy, timer))
    return hosts


# --- the inputs ------------------------------------------------------------------------


def domain_xml(
    *,
    targets: list[tuple[int, int | None]] | None,
    vcpus: str,
    cpuset: str | None,
    pins: list[tuple[str, str]],
    placement: str | None,
    timer: int | None,
) -> bytes:
    domain = etree.Element("domain", type="kvm")
    etree.SubElement(domain, "name").text = "fuzz-vm"
    etree.SubElement(domain, "description").text = "a VM & its <notes>"
    vcpu = etree.SubElement(domain, "vcpu")
    vcpu.text = vcpus
    if cpuset is not None:
        vcpu.set("cpuset", cpuset)
    if placement is not None:
        vcpu.set("placement", placement)
    if pins:
        cputune = etree.SubElement(domain, "cputune")
        for number, pinned in pins:
            etree.SubElement(cputune, "vcpupin", vcpu=number, cpuset=pinned)
    metadata = etree.SubElement(domain, "metadata")
    etree.SubElement(metadata, "{urn:example:other}note").text = "other metadata"
    if targets is not None:
        model = PoolModel(
            id_registers={},
            target_implementations=TargetImplementations(
                TargetImplementation(midr, revidr, None) for midr, revidr in targets
            ),
            timer_frequency_hz=timer,
        )
        metadata.append(pool_element(model))
    devices = etree.SubElement(domain, "devices")
    etree.SubElement(devices, "disk", type="file", device="disk")
    return etree.tostring(domain)


NS = POOL_NAMESPACE.encode()


def _spell(text: bytes, how: int) -> bytes:
    """``text`` with some characters written as character references."""
    out = []
    for index, byte in enumerate(text):
        if (index + how) % (how % 5 + 2) == 0:
            out.append(f"&#{byte};" if how % 2 else f"&#x{byte:X};")
        else:
            out.append(chr(byte))
    return "".join(out).encode()


MUTATIONS = [
    "none",
    "charref-namespace",
    "entity-namespace",
    "entity-metadata",
    "version",
    "utf16",
    "utf16-nobom",
    "utf8-bom",
    "latin1-declared",
    "ebcdic",
    "utf32",
    "default-namespace",
    "other-prefix",
    "comment",
    "cdata-description",
    "pool-outside-metadata",
    "two-metadata",
    "truncate",
    "byte-flip",
    "external-dtd",
    "namespace-in-description",
    "billion-laughs",
    # the round-3 classes: readings where expat and libxml2 differ, and encodings
    "pe-then-fixed-xmlns",
    "entity-markup-target",
    "entity-markup-cputune",
    "slash-namespace",
    "declared-encoding",
    "unknown-register-group",
    "entity-amplification",
]
# Encodings libxml2 reads (through iconv) and expat does not: (declared name, Python codec).
DECLARED_ENCODINGS = [
    ("Shift_JIS", "shift_jis"),
    ("GB18030", "gb18030"),
    ("EUC-JP", "euc_jp"),
    ("UTF-7", "utf-7"),
    ("ISO-10646-UCS-2", "utf-16-be"),
    ("UCS-4", "utf-32-be"),
    ("IBM1047", "cp037"),
    ("windows-1252", "cp1252"),
    ("UTF-32", "utf-32"),
]
_POOL_NAMES = (b"pool", b"targets", b"implementation", b"timer", b"registers", b"register")


def mutate(xml: bytes, mutation: str, seed: int) -> bytes:  # noqa: PLR0911, PLR0912 (one branch per mutation)
    if mutation in _READING_MUTATIONS:
        return _READING_MUTATIONS[mutation](xml, seed)
    if mutation == "charref-namespace":
        return xml.replace(NS, _spell(NS, seed), 1)
    if mutation == "entity-namespace":
        body = xml.replace(NS, b"&ns;", 1)
        return b'<!DOCTYPE domain [<!ENTITY ns "' + _spell(NS, seed) + b'">]>\n' + body
    if mutation == "entity-metadata":
        start, end = xml.find(b"<metadata>"), xml.find(b"</metadata>")
        if start < 0 or end < 0:
            return xml
        inner = (
            xml[start + len(b"<metadata>") : end].replace(b"&", b"&#38;").replace(b'"', b"&#34;")
        )
        return (
            b'<!DOCTYPE domain [<!ENTITY m "'
            + inner
            + b'">]>\n'
            + xml[: start + len(b"<metadata>")]
            + b"&m;"
            + xml[end:]
        )
    if mutation == "version":
        version = [b"2", b"10", b"0", b"1.1", b"", b"01", b"1 "][seed % 7]
        return xml.replace(NS, POOL_NAMESPACE_PREFIX.encode() + version)
    if mutation == "utf16":
        return ('<?xml version="1.0" encoding="UTF-16"?>' + xml.decode(errors="replace")).encode(
            "utf-16"
        )
    if mutation == "utf16-nobom":
        encoding = "UTF-16LE" if seed % 2 else "UTF-16BE"
        declared = f'<?xml version="1.0" encoding="{encoding}"?>' + xml.decode(errors="replace")
        return declared.encode(encoding)
    if mutation == "utf8-bom":
        return b"\xef\xbb\xbf" + xml
    if mutation == "latin1-declared":
        return b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + xml
    if mutation == "ebcdic":
        return ('<?xml version="1.0" encoding="IBM037"?>\n' + xml.decode(errors="replace")).encode(
            "cp037", errors="replace"
        )
    if mutation == "utf32":
        return ('<?xml version="1.0" encoding="UTF-32"?>' + xml.decode(errors="replace")).encode(
            "utf-32"
        )
    if mutation == "default-namespace":
        return (
            xml.replace(b"xmlns:qemu-errata=", b"xmlns=")
            .replace(b"<qemu-errata:", b"<")
            .replace(b"</qemu-errata:", b"</")
        )
    if mutation == "other-prefix":
        prefix = b"x" * (seed % 5 + 1)
        return (
            xml.replace(b"xmlns:qemu-errata=", b"xmlns:" + prefix + b"=")
            .replace(b"<qemu-errata:", b"<" + prefix + b":")
            .replace(b"</qemu-errata:", b"</" + prefix + b":")
        )
    if mutation == "comment":
        return xml.replace(b"<metadata>", b"<metadata><!-- " + NS[: seed % len(NS)] + b" -->", 1)
    if mutation == "cdata-description":
        return xml.replace(b"a VM &amp; its &lt;notes&gt;", b"<![CDATA[" + NS + b"]]>")
    if mutation == "pool-outside-metadata":
        start, end = xml.find(b"<qemu-errata:pool"), xml.find(b"</qemu-errata:pool>")
        if start < 0 or end < 0:
            return xml
        element = xml[start : end + len(b"</qemu-errata:pool>")]
        moved = xml[:start] + xml[end + len(b"</qemu-errata:pool>") :]
        return moved.replace(b"</devices>", element + b"</devices>")
    if mutation == "two-metadata":
        return xml.replace(b"<devices>", b"<metadata/><devices>", 1)
    if mutation == "truncate":
        return xml[: seed % max(len(xml), 1)]
    if mutation == "byte-flip":
        data = bytearray(xml)
        if data:
            data[seed % len(data)] ^= 1 << (seed % 8)
        return bytes(data)
    if mutation == "external-dtd":
        return b'<!DOCTYPE domain SYSTEM "/etc/shadow">\n' + xml
    if mutation == "namespace-in-description":
        return xml.replace(b"a VM &amp; its &lt;notes&gt;", b"see " + NS)
    if mutation == "billion-laughs":
        entities = "".join(
            f'<!ENTITY l{i} "&l{i - 1};&l{i - 1};&l{i - 1};&l{i - 1};">' for i in range(1, 12)
        )
        return f'<!DOCTYPE domain [<!ENTITY l0 "ha">{entities}]>\n'.encode() + xml.replace(
            b"fuzz-vm", b"&l11;", 1
        )
    return xml


def _pe_then_fixed_xmlns(xml: bytes, _seed: int) -> bytes:
    """Unprefixed pool elements put in the namespace by #FIXED defaults after a %pe; (expat
    ignores every declaration after it, libxml2 applies them)."""
    plain = (
        xml.replace(b' xmlns:qemu-errata="' + NS + b'"', b"")
        .replace(b"<qemu-errata:", b"<")
        .replace(b"</qemu-errata:", b"</")
    )
    defaults = b"".join(
        b"<!ATTLIST " + name + b' xmlns CDATA #FIXED "' + NS + b'">' for name in _POOL_NAMES
    )
    return b'<!DOCTYPE domain [<!ENTITY % pe "<!-- -->"> %pe; ' + defaults + b"]>\n" + plain


def _entity_markup_target(xml: bytes, seed: int) -> bytes:
    """A target only expat sees: libvirt keeps the entity reference, its XPath never enters."""
    midr = MIDRS[seed % len(MIDRS)]
    entity = f"<implementation xmlns='{POOL_NAMESPACE}' midr='{midr:#x}'/>".encode()
    body = xml.replace(b"<qemu-errata:targets>", b"<qemu-errata:targets>&t;", 1)
    return b'<!DOCTYPE domain [<!ENTITY t "' + entity + b'">]>\n' + body


def _entity_markup_cputune(xml: bytes, seed: int) -> bytes:
    """A pinning only expat sees."""
    cpu = seed % 4
    entity = f"<cputune><vcpupin vcpu='0' cpuset='{cpu}'/></cputune>".encode()
    body = xml.replace(b"<metadata>", b"&p;<metadata>", 1)
    return b'<!DOCTYPE domain [<!ENTITY p "' + entity + b'">]>\n' + body


def _slash_namespace(xml: bytes, seed: int) -> bytes:
    """A child of <domain> whose namespace URI holds a '/': once read as the pool."""
    midr = MIDRS[seed % len(MIDRS)]
    element = (
        f'<x:pool xmlns:x="metadata/{POOL_NAMESPACE}" xmlns:qemu-errata="{POOL_NAMESPACE}" '
        f'version="1"><qemu-errata:targets><qemu-errata:implementation midr="{midr:#x}"/>'
        "</qemu-errata:targets></x:pool>"
    ).encode()
    return xml.replace(b"</domain>", element + b"</domain>")


def _declared_encoding(xml: bytes, seed: int) -> bytes:
    name, codec = DECLARED_ENCODINGS[seed % len(DECLARED_ENCODINGS)]
    text = f'<?xml version="1.0" encoding="{name}"?>\n' + xml.decode(errors="replace")
    return text.encode(codec, errors="replace")


def _unknown_register_group(xml: bytes, seed: int) -> bytes:
    group = [b"cpu_registers", b"", b"ID_REGISTERS"][seed % 3]
    element = (
        b'<qemu-errata:registers group="' + group + b'">'
        b'<qemu-errata:register name="MIDR_EL1" value="0x1"/></qemu-errata:registers>'
    )
    return xml.replace(b"</qemu-errata:pool>", element + b"</qemu-errata:pool>", 1)


def _entity_amplification(xml: bytes, seed: int) -> bytes:
    """An attribute built from entity references (small here: a test measures the real size)."""
    references = b"&a;" * (100 + seed % 100)
    body = xml.replace(b'type="kvm"', b'type="kvm" note="' + references + b'"', 1)
    return b'<!DOCTYPE domain [<!ENTITY a "' + b"a" * 1000 + b'">]>\n' + body


_READING_MUTATIONS = {
    "pe-then-fixed-xmlns": _pe_then_fixed_xmlns,
    "entity-markup-target": _entity_markup_target,
    "entity-markup-cputune": _entity_markup_cputune,
    "slash-namespace": _slash_namespace,
    "declared-encoding": _declared_encoding,
    "unknown-register-group": _unknown_register_group,
    "entity-amplification": _entity_amplification,
}


def effective_mutations() -> list[str]:
    """The mutations that change a pool domain XML (a test checks that all do)."""
    xml = domain_xml(
        targets=[(N1, None)], vcpus="2", cpuset=None, pins=[], placement=None, timer=None
    )
    return [m for m in MUTATIONS if m == "none" or mutate(xml, m, 7) != xml]


_CPU = st.one_of(
    st.integers(0, 7), st.integers(0, 70), st.sampled_from([8191, 8192, 4_000_000_000])
)
_ITEM = st.one_of(
    _CPU.map(str),
    st.tuples(_CPU, _CPU).map(lambda r: f"{min(r)}-{max(r)}"),
    _CPU.map(lambda c: f"^{c}"),
    st.sampled_from(["", " 1 ", "x", "3-1", "0-4000000000", "01"]),
)
CPUSET = st.lists(_ITEM, min_size=1, max_size=5).map(",".join)


_ROUND_ROBIN = itertools.count()


@dataclass
class Case:
    host: int
    op: tuple[str, str]
    argv_extra: list[str]
    name: str
    xml: bytes
    close_stderr: bool
    mutations: tuple[str, ...] = ()


@st.composite
def cases(draw: st.DrawFn) -> Case:
    pool = draw(st.booleans()) or draw(st.booleans())
    targets = (
        draw(
            st.lists(
                st.tuples(st.sampled_from(MIDRS), st.sampled_from([None, 0, 1])),
                min_size=1,
                max_size=3,
                unique_by=lambda t: t[0],
            )
        )
        if pool
        else None
    )
    vcpus = draw(st.one_of(st.integers(1, 4).map(str), st.sampled_from(["0", "4097", " 2 ", "x"])))
    cpuset = draw(st.none() | CPUSET)
    pins = draw(
        st.lists(
            st.tuples(
                st.one_of(st.integers(0, 5).map(str), st.sampled_from(["01", "x", "-1"])), CPUSET
            ),
            max_size=4,
        )
    )
    placement = draw(st.sampled_from([None, None, "static", "auto"]))
    timer = draw(st.sampled_from([None, 25_000_000, 1_000_000_000]))
    xml = domain_xml(
        targets=targets, vcpus=vcpus, cpuset=cpuset, pins=pins, placement=placement, timer=timer
    )
    mutations = [MUTATIONS[next(_ROUND_ROBIN) % len(MUTATIONS)]]  # every class as often
    if draw(st.integers(0, 9)) == 0:  # a second mutation now and then
        mutations.append(draw(st.sampled_from(MUTATIONS)))
    for mutation in mutations:
        xml = mutate(xml, mutation, draw(st.integers(0, 10_000)))
    return Case(
        host=draw(st.integers(0, len(HOST_SHAPES) - 1)),
        op=draw(st.sampled_from(OPS)),
        argv_extra=draw(st.sampled_from([["-"], [], ["-", "extra"]])),
        name=draw(st.sampled_from(["fuzz-vm", "vm\nwith newline", "ü" * 3, "x" * 5000])),
        xml=xml,
        close_stderr=draw(st.integers(0, 19)) == 0,
        mutations=tuple(mutations),
    )


# --- the oracle ------------------------------------------------------------------------

# What the hook reads pool VMs in (its stated rule), checked against lxml's docinfo.
READ_ENCODINGS = {"utf-8", "iso-8859-1", "us-ascii"}


def oracle(case: Case, host: FakeHost) -> str:
    """``allow``, ``refuse`` or ``any`` (libvirt would never send it: not a domain)."""
    if case.op not in GUARDED:
        return "allow"
    view = libvirt_view(case.xml)
    if view is None:
        return "any"  # libxml2 refuses it, or it is no domain: libvirt never sends it
    if view.pool is None:
        return "allow"
    if case.op == ("prepare", "begin") and host.policy != "enforce":
        return "allow"
    if outside_reading_rule(case.xml):
        return "refuse"  # the reading rule: a pool VM is read exactly as libvirt does, or refused
    return _pool_verdict(view.pool, view.cpus, host)


def outside_reading_rule(xml: bytes) -> bool:
    """A DOCTYPE, or an encoding the hook does not read: refused whenever it may be a pool VM."""
    if b"\0" in xml[:4] or xml[:2] in (b"\xfe\xff", b"\xff\xfe"):
        return True  # UTF-16 or UCS-4, declared or not
    try:
        docinfo = etree.fromstring(xml, libvirt_parser()).getroottree().docinfo
    except (etree.XMLSyntaxError, ValueError):
        return True
    doctype = docinfo.doctype  # type: ignore[union-attr]
    return bool(doctype) or (docinfo.encoding or "").lower() not in READ_ENCODINGS


def _pool_verdict(
    pool: PoolFacts | str, allowed: frozenset[int] | str | None, host: FakeHost
) -> str:
    if isinstance(pool, str) or isinstance(allowed, str):
        return "refuse"
    cpus = set(host.cpus) if allowed is None else set(allowed)
    if not cpus <= set(host.cpus):
        return "refuse"
    for cpu in cpus:
        identity = host.cpus[cpu]
        if identity is None:
            return "refuse"
        midr, revidr = identity
        if not any(midr == m and r in (None, revidr) for m, r, _ in pool.targets):
            return "refuse"
    timer = pool.timer_frequency_hz
    if timer is not None and host.timer is not None and timer != host.timer:
        return "refuse"
    return "allow"


# --- running the hook in this process --------------------------------------------------


@contextlib.contextmanager
def _captured(
    stdin: bytes, close_stderr: bool
) -> Iterator[tuple[io.StringIO, io.StringIO, list[bytes]]]:
    """fd 0 holds ``stdin``; fds 1, 2 and sys.stdout/stderr are captured (stderr maybe closed)."""
    saved = [os.dup(0), os.dup(1), os.dup(2)]
    files = [os.memfd_create("stdin"), os.memfd_create("stdout"), os.memfd_create("stderr")]
    os.write(files[0], stdin)
    os.lseek(files[0], 0, os.SEEK_SET)
    raw: list[bytes] = []
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    try:
        for index in range(3):
            os.dup2(files[index], index)
        sys.stdout = out
        sys.stderr = None if close_stderr else err
        if close_stderr:
            os.close(2)
        yield out, err, raw
    finally:
        sys.stdout, sys.stderr = old
        for index in range(3):
            os.dup2(saved[index], index)
            os.close(saved[index])
        for index in (1, 2):
            os.lseek(files[index], 0, os.SEEK_SET)
            raw.append(os.read(files[index], 1 << 20))
        for descriptor in files:
            os.close(descriptor)


@dataclass
class Counts:
    cases: int = 0
    fail_open: int = 0
    pool_refused_wrongly: int = 0
    non_pool_refused: int = 0
    reading_rule: int = 0  # refused by the reading rule (a DOCTYPE, an encoding): may be ours
    tracebacks: int = 0
    stdout: int = 0
    disclosure: int = 0
    slow: int = 0
    max_seconds: float = 0.0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    classes: collections.Counter[str] = field(default_factory=collections.Counter)
    bad_classes: collections.Counter[str] = field(default_factory=collections.Counter)
    examples: dict[str, bytes] = field(default_factory=dict)

    def bad(self) -> int:
        return self.fail_open + self.tracebacks + self.stdout + self.disclosure

    def summary(self) -> str:
        return (
            f"cases={self.cases} fail_open={self.fail_open} tracebacks={self.tracebacks} "
            f"stdout={self.stdout} disclosure={self.disclosure} "
            f"pool_refused_wrongly={self.pool_refused_wrongly} "
            f"non_pool_refused={self.non_pool_refused} reading_rule={self.reading_rule} "
            f"slow(>{SLOW_SECONDS}s)={self.slow} "
            f"max_seconds={self.max_seconds:.3f} outcomes={dict(self.outcomes)}\n"
            f"cases per class: {dict(sorted(self.classes.items()))}\n"
            f"failures per class: {dict(sorted(self.bad_classes.items()))}"
        )


def run_case(case: Case, hosts: list[FakeHost], counts: Counts) -> None:
    host = hosts[case.host]
    os.environ["HOME"] = str(host.home)
    argv = ["qemu-errata", case.name, *case.op, *case.argv_extra]
    expected = oracle(case, host) if len(argv) >= 4 else "allow"
    started = time.perf_counter()
    status: int | None = None
    crashed = ""
    with _captured(case.xml, case.close_stderr) as (out, err, raw):
        try:
            status = hook.main(argv)
        except BaseException:
            crashed = traceback.format_exc()
    elapsed = time.perf_counter() - started
    counts.cases += 1
    counts.classes.update(set(case.mutations))
    bad_before = counts.bad()
    counts.max_seconds = max(counts.max_seconds, elapsed)
    counts.slow += elapsed > SLOW_SECONDS
    text = err.getvalue() + raw[1].decode(errors="replace")
    if crashed or "Traceback" in text or status not in (0, 1):
        counts.tracebacks += 1
        counts.examples.setdefault("traceback", case.xml + crashed.encode())
    if out.getvalue() or raw[0]:
        counts.stdout += 1
        counts.examples.setdefault("stdout", case.xml)
    if "planted-secret" in text or "planted-secret" in _log_tail(host):
        counts.disclosure += 1
        counts.examples.setdefault("disclosure", case.xml)
    outcome = "allow" if status == 0 else "refuse"
    counts.outcomes[f"{expected}->{outcome}"] += 1
    if expected == "refuse" and outcome == "allow":
        counts.fail_open += 1
        counts.examples.setdefault("fail_open", case.xml)
    elif expected == "allow" and outcome == "refuse":
        if outside_reading_rule(case.xml):
            counts.reading_rule += 1
        elif _is_pool(case.xml):
            counts.pool_refused_wrongly += 1
            counts.examples.setdefault("pool_refused_wrongly", case.xml + text.encode())
        else:
            counts.non_pool_refused += 1
            counts.examples.setdefault("non_pool_refused", case.xml + text.encode())
    if counts.bad() > bad_before:
        counts.bad_classes.update(set(case.mutations))


def _is_pool(xml: bytes) -> bool:
    return POOL_NAMESPACE_PREFIX.encode() in xml


def _log_tail(host: FakeHost) -> str:
    log = host.home / "hook.log"
    try:
        with open(log, "rb") as stream:
            size = stream.seek(0, os.SEEK_END)
            stream.seek(max(0, size - 8192))
            tail = stream.read().decode(errors="replace")
        if size > 1 << 20:
            log.write_bytes(b"")
        return tail
    except FileNotFoundError:
        return ""


def fuzz(cases_to_run: int, base: Path) -> Counts:
    """Run ``cases_to_run`` cases with hosts under ``base``; the counts."""
    hosts = make_hosts(base)
    counts = Counts()
    home = os.environ.get("HOME")

    @settings(
        max_examples=cases_to_run,
        database=None,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def one(case: Case) -> None:
        run_case(case, hosts, counts)

    try:
        one()
    finally:
        if home is not None:
            os.environ["HOME"] = home
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--examples", type=Path, help="write one input per kind of failure here")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hook-fuzz.") as base:
        counts = fuzz(args.cases, Path(base))
    print(counts.summary())
    print(f"elapsed={time.monotonic() - started:.0f}s")
    if args.examples:
        args.examples.mkdir(parents=True, exist_ok=True)
        for kind, data in counts.examples.items():
            (args.examples / f"{kind}.xml").write_bytes(data)
    return 1 if counts.bad() else 0


if __name__ == "__main__":
    sys.exit(main())
