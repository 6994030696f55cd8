"""The hook reads a domain XML exactly as libvirt does, or refuses it.

libvirt parses with libxml2 without entity substitution (an entity holding markup
stays a reference its XPath never enters), applies the internal subset's
declarations even after a parameter-entity reference (expat ignores them), matches
elements by namespace URI (which may hold '/'), and reads every encoding iconv
knows. The differential test generates documents with all of these and holds the
hook's expat reader to lxml configured as libvirt configures libxml2
(``support.pool_oracle``): wherever the hook does not refuse, it must see exactly
the pool metadata and CPUs libvirt sees. The round-trip property test holds the
writer and the hook's reader to one vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from support.pool_oracle import LibvirtView, PoolFacts, libvirt_view

from libvirt_hooks.domain import MAX_RUN, Domain, read_domain
from libvirt_hooks.encodings import may_name_the_pool
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.pool_namespace import POOL_NAMESPACE, REGISTER_GROUPS
from qemu_errata.errors import DomainXmlError
from qemu_errata.vmm.pool_element import pool_element

NS = POOL_NAMESPACE
MIDRS = (0x414FD0C1, 0x414FD0B1, 0x461F0010)
# (declared name or None, Python codec): what libxml2 reads; the hook reads the first four
# (ASCII-compatible: every byte "<" is the character).
ENCODINGS = [
    (None, "utf-8"),
    ("UTF-8", "utf-8"),
    ("ISO-8859-1", "latin-1"),
    ("US-ASCII", "ascii"),
    ("UTF-16", "utf-16"),
    ("UTF-16LE", "utf-16-le"),
    ("Shift_JIS", "shift_jis"),
    ("EUC-JP", "euc_jp"),
    ("GB18030", "gb18030"),
    ("UTF-7", "utf-7"),
    ("UCS-4", "utf-32-be"),
    ("windows-1252", "cp1252"),
]
# Namespace URIs: ours, other versions, and ones that only joined strings confuse.
NAMESPACES = [NS, NS, NS, f"metadata/{NS}", f"{NS}/x", f"{NS} pool", "urn:qemu-errata:pool:2", ""]


@dataclass(frozen=True)
class Piece:
    """A part of a generated document: internal-subset declarations and body text."""

    declarations: str = ""
    text: str = ""


def implementation(prefix: str, midr: int) -> str:
    return f"<{prefix}implementation midr='{midr:#x}'/>"


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """A domain XML with a DTD or not, pool metadata in some namespace and spelling."""
    namespace = draw(st.sampled_from(NAMESPACES))
    prefixed = draw(st.booleans())
    prefix = "q:" if prefixed else ""
    declare = f" xmlns:q='{namespace}'" if prefixed else f" xmlns='{namespace}'"
    declarations: list[str] = []
    if draw(st.integers(0, 5)) == 0:  # undeclared: a #FIXED default after a %pe; declares it
        declare = ""
        declarations.append("<!ENTITY % pe '<!-- -->'> %pe;")
        declarations += [
            f"<!ATTLIST {prefix}{name} xmlns{':q' if prefixed else ''} CDATA #FIXED '{namespace}'>"
            for name in ("pool", "targets", "implementation", "timer")
        ]
    targets = [
        implementation(prefix, m) for m in draw(st.lists(st.sampled_from(MIDRS), max_size=3))
    ]
    if draw(st.booleans()):  # a target only expat would see
        midr = draw(st.sampled_from(MIDRS))  # declaring its namespace: well-formed in any context
        declarations.append(f"<!ENTITY t \"<implementation xmlns='{NS}' midr='{midr:#x}'/>\">")
        targets.insert(draw(st.integers(0, len(targets))), "&t;")
    version = draw(st.sampled_from(["1", "1", "2", "&v;"]))
    if version == "&v;":
        declarations.append("<!ENTITY v '1'>")
    timer = draw(st.sampled_from(["", f"<{prefix}timer frequency='25000000'/>"]))
    group = draw(st.sampled_from(["", *REGISTER_GROUPS, "cpu_registers"]))
    registers = (
        f"<{prefix}registers group='{group}'><{prefix}register name='MIDR_EL1' value='0x1'/>"
        f"</{prefix}registers>"
        if group
        else ""
    )
    pool = (
        f"<{prefix}pool{declare} version='{version}'><{prefix}targets>{''.join(targets)}"
        f"</{prefix}targets>{timer}{registers}</{prefix}pool>"
    )
    metadata = f"<metadata>{pool}</metadata>"
    if draw(st.integers(0, 4)) == 0:  # the whole pool inside an entity
        declarations.append(f'<!ENTITY m "{pool}">')
        metadata = "<metadata>&m;</metadata>"
    pins = draw(st.sampled_from(["", "<cputune><vcpupin vcpu='0' cpuset='0'/></cputune>"]))
    if pins and draw(st.booleans()):  # a pinning only expat would see
        declarations.append(f'<!ENTITY p "{pins}">')
        pins = "&p;"
    cpuset = draw(st.sampled_from(["", " cpuset='0-1'", " cpuset='&c;'"]))
    if cpuset == " cpuset='&c;'":
        declarations.append("<!ENTITY c '0-3'>")
    stray = ""
    if draw(st.integers(0, 3)) == 0:  # a child of <domain> that only joined paths confuse
        stray = (
            f"<s:pool xmlns:s='metadata/{NS}' xmlns:q2='{NS}' version='1'><q2:targets>"
            f"{implementation('q2:', draw(st.sampled_from(MIDRS)))}</q2:targets></s:pool>"
        )
    body = (
        f"<domain type='kvm'><name>vm</name><vcpu{cpuset}>1</vcpu>{pins}{metadata}{stray}</domain>"
    )
    doctype = ""
    if declarations or draw(st.integers(0, 5)) == 0:
        doctype = f"<!DOCTYPE domain [{' '.join(declarations)}]>"
    declared, codec = draw(st.sampled_from(ENCODINGS))
    head = "" if declared is None else f"<?xml version='1.0' encoding='{declared}'?>"
    return (head + doctype + body).encode(codec)


def hook_reading(xml: bytes) -> Domain | None:
    """The hook reader's facts; None where it refuses the document."""
    try:
        return read_domain(xml)
    except DomainXmlError:
        return None


def same_facts(domain: Domain, view: LibvirtView) -> bool:
    """Whether the hook saw exactly what libvirt sees (pool metadata and allowed CPUs)."""
    if domain.pool is None:
        return view.pool is None
    if not isinstance(view.pool, PoolFacts) or isinstance(view.cpus, str):
        return False
    hook_pool = PoolFacts(
        targets=tuple(sorted({(t.midr, t.revidr, t.aidr) for t in domain.pool.targets})),
        timer_frequency_hz=domain.pool.timer_frequency_hz,
        registers=tuple(
            (group, tuple(sorted(domain.pool.registers[group].items())))
            for group in REGISTER_GROUPS
            if domain.pool.registers.get(group)
        ),
    )
    cpus = (
        None
        if domain.cpus is None
        else frozenset(cpu for cpu in range(domain.cpus.bit_length()) if domain.cpus >> cpu & 1)
    )
    libvirt_pool = PoolFacts(
        tuple(sorted(set(view.pool.targets))), view.pool.timer_frequency_hz, view.pool.registers
    )
    return hook_pool == libvirt_pool and cpus == view.cpus


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_the_hook_sees_what_libvirt_sees_or_refuses(xml: bytes) -> None:
    domain = hook_reading(xml)
    view = libvirt_view(xml)
    if domain is None or view is None:  # the hook refuses, or libvirt cannot read it at all
        return
    assert same_facts(domain, view), (xml, domain.pool, view)


@pytest.mark.parametrize(
    "xml",
    [
        # Declarations after a %pe; (expat ignores them): the pool is in the namespace.
        b"<!DOCTYPE domain [<!ENTITY % pe '<!-- -->'> %pe; "
        b"<!ATTLIST pool xmlns CDATA #FIXED '" + NS.encode() + b"'>"
        b"<!ATTLIST targets xmlns CDATA #FIXED '" + NS.encode() + b"'>]>"
        b"<domain><metadata><pool version='1'><targets/></pool></metadata></domain>",
        # An entity holding markup: libvirt keeps the reference, expat the element.
        b"<!DOCTYPE domain [<!ENTITY t \"<implementation xmlns='" + NS.encode() + b"' "
        b"midr='0x461f0010'/>\">]>"
        b"<domain><metadata><q:pool xmlns:q='" + NS.encode() + b"' version='1'><q:targets>"
        b"<q:implementation midr='0x414fd0c1'/>&t;</q:targets></q:pool></metadata></domain>",
    ],
    ids=["pe-then-fixed-xmlns", "entity-with-markup"],
)
def test_a_pool_document_with_a_doctype_is_refused_as_such(xml: bytes) -> None:
    assert libvirt_view(xml) is not None  # libvirt reads it: the hook must not guess
    with pytest.raises(DomainXmlError, match=r"has a DOCTYPE.*libvirt never writes"):
        read_domain(xml)


def test_a_namespace_holding_a_slash_is_not_the_pool() -> None:
    stray = (
        f"<s:pool xmlns:s='metadata/{NS}' xmlns:q='{NS}' version='1'><q:targets>"
        "<q:implementation midr='0x461f0010'/></q:targets></s:pool>"
    )
    xml = (
        f"<domain><metadata><q:pool xmlns:q='{NS}' version='1'><q:targets>"
        f"<q:implementation midr='0x414fd0c1'/></q:targets></q:pool></metadata>{stray}</domain>"
    ).encode()
    pool = read_domain(xml).pool
    assert pool is not None
    assert [t.midr for t in pool.targets] == [0x414FD0C1]


@pytest.mark.parametrize(
    ("declared", "codec"),
    [
        ("Shift_JIS", "shift_jis"),
        ("GB18030", "gb18030"),
        ("EUC-JP", "euc_jp"),
        ("UTF-7", "utf-7"),
        ("ISO-10646-UCS-2", "utf-16-be"),
        ("UCS-4", "utf-32-be"),
        ("IBM037", "cp037"),
        ("UTF-16", "utf-16"),
    ],
)
def test_legal_encodings_the_hook_does_not_read_are_refused_as_such(
    declared: str, codec: str
) -> None:
    pool = (
        f"<domain><metadata><q:pool xmlns:q='{NS}' version='1'><q:targets>"
        "<q:implementation midr='0x414fd0c1'/></q:targets></q:pool></metadata></domain>"
    )
    plain = "<domain><name>\u65e5\u672c</name><metadata/></domain>"
    head = f"<?xml version='1.0' encoding='{declared}'?>"
    with pytest.raises(DomainXmlError, match=r"encoded in .*which the hook does not read"):
        read_domain((head + pool).encode(codec))
    assert read_domain((head + plain).encode(codec, errors="replace")).pool is None


def test_only_documents_that_cannot_name_the_pool_in_any_reading_are_left_unparsed() -> None:
    assert not may_name_the_pool(b"<!DOCTYPE domain><domain><name>vm</name></domain>")
    assert may_name_the_pool(b"<domain>&#117;</domain>")
    assert may_name_the_pool(("<domain>" + NS + "</domain>").encode("utf-16-le"))
    assert may_name_the_pool(b"<?xml version='1.0' encoding='UTF-7'?><domain>+ACY-</domain>")
    assert may_name_the_pool(b"<?xml version='1.0' encoding='x-unknown-to-python'?><domain/>")


# --- one vocabulary: the writer's element reads back through the hook's reader ------------------

_REGISTER_NAME = st.sampled_from(["MIDR_EL1", "ID_AA64ISAR0_EL1", "GICD_TYPER", "SMCCC_ARCH"])
_REGISTERS = st.dictionaries(_REGISTER_NAME, st.integers(0, (1 << 64) - 1), max_size=3)


@st.composite
def pool_models(draw: st.DrawFn) -> PoolModel:
    targets = draw(
        st.lists(
            st.tuples(
                st.integers(0, (1 << 32) - 1),
                st.none() | st.integers(0, (1 << 64) - 1),
                st.none() | st.integers(0, (1 << 64) - 1),
            ),
            min_size=1,
            max_size=4,
            unique_by=lambda target: target[0],
        )
    )
    return PoolModel(
        target_implementations=TargetImplementations(
            TargetImplementation(midr, revidr, aidr) for midr, revidr, aidr in targets
        ),
        timer_frequency_hz=draw(st.none() | st.integers(1, (1 << 32) - 1)),
        id_registers=draw(_REGISTERS),
        firmware_registers=draw(_REGISTERS),
        gic_registers=draw(_REGISTERS),
    )


@settings(max_examples=200, deadline=None)
@given(
    pool_models(),
    st.none() | st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
)
def test_a_model_round_trips_through_the_writer_and_the_hook_reader(
    model: PoolModel, user_cpu: str | None
) -> None:
    domain = etree.Element("domain", type="kvm")
    etree.SubElement(domain, "metadata").append(pool_element(model, user_cpu))
    pool = read_domain(etree.tostring(domain)).pool
    assert pool is not None
    assert [(t.midr, t.revidr, t.aidr) for t in pool.targets] == [
        (t.midr, t.revidr, t.aidr) for t in model.target_implementations
    ]
    assert pool.timer_frequency_hz == model.timer_frequency_hz
    for group in REGISTER_GROUPS:
        assert pool.registers.get(group, {}) == getattr(model, group)


def test_both_readers_refuse_an_unknown_register_group() -> None:
    xml = (
        f"<domain><metadata><q:pool xmlns:q='{NS}' version='1'><q:targets>"
        "<q:implementation midr='0x414fd0c1'/></q:targets><q:registers group='cpu_registers'>"
        "<q:register name='MIDR_EL1' value='0x1'/></q:registers></q:pool></metadata></domain>"
    ).encode()
    with pytest.raises(DomainXmlError, match="unknown register group 'cpu_registers'"):
        read_domain(xml)
    view = libvirt_view(xml)
    assert view is not None
    assert view.pool == "invalid"


def test_a_pool_document_with_a_mebibyte_without_markup_is_refused_before_parsing() -> None:
    pool = (
        f"<metadata><q:pool xmlns:q='{NS}' version='1'><q:targets>"
        "<q:implementation midr='0x414fd0c1'/></q:targets></q:pool></metadata>"
    )
    short = f"<domain><description>{'x' * 100_000}</description>{pool}</domain>"
    assert read_domain(short.encode()).pool is not None
    long = f"<domain><description a='{'x' * (MAX_RUN * 2)}'/>{pool}</domain>"
    with pytest.raises(DomainXmlError, match="bytes in a row without markup"):
        read_domain(long.encode())
