"""The errata facts of one kernel source tree, read from its files' text (pure).

What is read: ``arm64_errata[]`` of cpu_errata.c (capability, logged description,
every MIDR range with its Kconfig guard: inline lists, list arrays, per-entry
lists, custom matchers, ``MIDR_FIXED`` REVIDR bits), the Spectre lists of
proton-pack.c (v2 and v4 safe lists, the v3a list, the BHB safe list and loop
lists), cpufeature.c's KPTI safe list and broken-DBM list, mmu.h's KASLR rule,
and how cpu_errata.c matches a target implementation list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from qemu_errata.errata_sync.csource import (
    Guard,
    Model,
    Node,
    Token,
    arrays,
    cpu_models,
    defines,
    flatten,
    integer,
    parse_nodes,
    strip_comments,
    tokens,
)

ALL_VERSIONS = (0, 0xF << 20 | 0xF)

# Files of the source tree the facts come from (paths inside linux-source-X.Y).
SOURCE_FILES = (
    "arch/arm64/kernel/cpu_errata.c",
    "arch/arm64/kernel/cpufeature.c",
    "arch/arm64/kernel/proton-pack.c",
    "arch/arm64/include/asm/cputype.h",
    "arch/arm64/include/asm/mmu.h",
    "Documentation/arch/arm64/silicon-errata.rst",
    "Makefile",
)

# How a kernel matches MIDR ranges when the hypervisor gave it a target list.
RULE_OWN_CPU = "own-cpu"  # no target list support: the MIDR/REVIDR the CPU reads
RULE_ANY_IN_RANGE = "any-in-range"  # a listed part in range, REVIDR fixes judged per listed CPU
RULE_EACH_LISTED = "each-listed"  # each listed CPU with its own MIDR and REVIDR


@dataclass(frozen=True)
class Range:
    """One MIDR range of a kernel table, with the Kconfig guard that builds it in."""

    implementer: int
    part: int
    rv_min: int
    rv_max: int
    guard: Guard = ()
    fixed: tuple[tuple[int, int], ...] = ()  # (variant/revision, REVIDR mask): fixed parts
    part_family: bool = False  # only implementer and part bits [11:8] compared (Kryo)
    model: str = ""  # the cputype.h name, to tell which documented component a range is


@dataclass(frozen=True)
class Capability:
    """One ``arm64_errata[]`` entry."""

    capability: str
    log: str  # "" when the entry has no description (it logs nothing)
    matcher: str  # the .matches function
    guard: Guard
    ranges: tuple[Range, ...]


@dataclass(frozen=True)
class KernelFacts:
    release: str  # from the Makefile: "7.2.13"
    capabilities: tuple[Capability, ...]
    lists: Mapping[str, tuple[Range, ...]]  # spectre-v2-safe, ..., kpti-safe, broken-dbm
    bhb_loops: tuple[tuple[int, tuple[Range, ...]], ...]  # (k, ranges), the kernel's order
    target_list_rule: str
    kaslr_needs_kpti_unless: str  # the ID field that spares KPTI under KASLR ("" never)
    # Errata whose code compares the MIDR the CPU reads with cputype.h's MIDR_<X>_ERRATUM_<N>
    # under a mask (never the target list), by Kconfig symbol <X>_ERRATUM_<N>.
    own_midr: Mapping[str, tuple[Range, ...]] = field(default_factory=dict)
    midr_config_symbols: frozenset[str] = field(default_factory=frozenset)


def kernel_facts(files: Mapping[str, str]) -> KernelFacts:
    """The facts of a tree, given the text of each of ``SOURCE_FILES`` by path."""
    models = cpu_models(files["arch/arm64/include/asm/cputype.h"])
    errata_c = files["arch/arm64/kernel/cpu_errata.c"]
    errata_tokens = tokens(errata_c)
    capabilities = _capabilities(strip_comments(errata_c), errata_tokens, models)
    proton = tokens(files["arch/arm64/kernel/proton-pack.c"])
    feature = tokens(files["arch/arm64/kernel/cpufeature.c"])
    lists = {
        "spectre-v2-safe": _named_list(proton, "spectre_v2_safe_list", models),
        "spectre-v3a-affected": _named_list(proton, "spectre_v3a_unsafe_list", models),
        "spectre-v4-safe": _named_list(proton, "spectre_v4_safe_list", models),
        "spectre-bhb-safe": _named_list(proton, "spectre_bhb_safe_list", models),
        "kpti-safe": _named_list(feature, "kpti_safe_list", models),
        "broken-dbm": _named_list(feature, "cpus", models),
    }
    symbols = {s for c in capabilities for s in _symbols(c.guard)}
    symbols |= {s for c in capabilities for r in c.ranges for s in _symbols(r.guard)}
    symbols |= {s for r in lists["broken-dbm"] for s in _symbols(r.guard)}
    return KernelFacts(
        release=_release(files["Makefile"]),
        capabilities=capabilities,
        lists=lists,
        bhb_loops=_bhb_loops(files["arch/arm64/kernel/proton-pack.c"], proton, models),
        target_list_rule=_target_list_rule(errata_c),
        kaslr_needs_kpti_unless=_kaslr_rule(files["arch/arm64/include/asm/mmu.h"]),
        midr_config_symbols=frozenset(symbols),
        own_midr=own_midr_errata(files["arch/arm64/include/asm/cputype.h"]),
    )


def own_midr_errata(cputype_h: str) -> dict[str, tuple[Range, ...]]:
    """``MIDR_X_ERRATUM_N`` (a model) and ``MIDR_X_ERRATUM_N_MASK`` (``~MIDR_CPU_VAR_REV(v,
    r)``: variant/revision bits ignored): the variant/revisions that match, as ranges."""
    table = defines(cputype_h)
    models = cpu_models(cputype_h)
    found: dict[str, tuple[Range, ...]] = {}
    for name, value in table.items():
        erratum = re.fullmatch(r"MIDR_(\w+_ERRATUM_\w+)", name)
        mask = table.get(name + "_MASK", "")
        ignored = re.fullmatch(r"\(~MIDR_CPU_VAR_REV\((\w+),\s*(\w+)\)\)", mask)
        if erratum is None or value not in models or ignored is None:
            continue
        bits = int(ignored.group(1), 0) << 20 | int(ignored.group(2), 0)
        model = models[value]
        guard = (frozenset({erratum.group(1)}),)
        rvs = sorted(_subsets(bits))
        found[erratum.group(1)] = tuple(
            Range(model.implementer, model.part, rv, rv, guard, model=value) for rv in rvs
        )
    return found


def _symbols(guard: Guard) -> set[str]:
    return {s for level in guard for s in level if not s.startswith("!")}


def _release(makefile: str) -> str:
    values = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d+)", makefile, re.M))
    return f"{values['VERSION']}.{values['PATCHLEVEL']}.{values['SUBLEVEL']}"


def _target_list_rule(errata_c: str) -> str:
    """How ``__is_affected_midr_range`` matches a listed CPU, read from its body."""
    text = strip_comments(errata_c)
    if "target_impl_cpu_num" not in text:
        return RULE_OWN_CPU
    body = re.search(r"__is_affected_midr_range\s*\([^)]*\)\s*\{(.*?)\n\}", text, re.S)
    if body is None:
        raise ValueError("cpu_errata.c: no __is_affected_midr_range()")
    if re.search(r"__is_midr_in_range\s*\(\s*midr\s*,", body.group(1)):
        return RULE_EACH_LISTED
    if re.search(r"\bis_midr_in_range\s*\(\s*&entry->midr_range\s*\)", body.group(1)):
        return RULE_ANY_IN_RANGE
    raise ValueError("cpu_errata.c: __is_affected_midr_range() matches in an unknown way")


def _kaslr_rule(mmu_h: str) -> str:
    """kaslr_requires_kpti(): the ID field that makes KPTI unnecessary under KASLR."""
    text = strip_comments(mmu_h)
    body = re.search(r"kaslr_requires_kpti\s*\(void\)\s*\{(.*?)\n\}", text, re.S)
    if body is None:
        return ""
    match = re.search(r"(ID_AA64\w+?)_EL1_(\w+?)_SHIFT", body.group(1))
    return "" if match is None else f"{match.group(1)}_EL1.{match.group(2)}"


def _subsets(bits: int) -> set[int]:
    """Every value made of some of ``bits``."""
    found, sub = {0}, bits
    while sub:
        found.add(sub)
        sub = (sub - 1) & bits
    return found


# ---------------------------------------------------------------- MIDR ranges


def midr_range(node: Node, models: Mapping[str, Model], guard: Guard = ()) -> Range | None:
    """A ``MIDR_ALL_VERSIONS``/``MIDR_RANGE``/``MIDR_REV_RANGE``/``MIDR_REV`` item; None for
    the terminating ``{}``."""
    if node.kind == "braces" and not node.children:
        return None
    if node.kind != "call":
        raise ValueError(f"not a MIDR range: {node.text}")
    args = node.children
    model = models[args[0].text]
    numbers = [integer(a) for a in args[1:]]
    if node.text in ("MIDR_ALL_VERSIONS", "ERRATA_MIDR_ALL_VERSIONS", "CAP_MIDR_ALL_VERSIONS"):
        low, high = ALL_VERSIONS
    elif node.text in ("MIDR_RANGE", "ERRATA_MIDR_RANGE", "CAP_MIDR_RANGE"):
        low, high = numbers[0] << 20 | numbers[1], numbers[2] << 20 | numbers[3]
    elif node.text in ("MIDR_REV_RANGE", "ERRATA_MIDR_REV_RANGE"):
        low, high = numbers[0] << 20 | numbers[1], numbers[0] << 20 | numbers[2]
    elif node.text in ("MIDR_REV", "ERRATA_MIDR_REV"):
        low = high = numbers[0] << 20 | numbers[1]
    else:
        raise ValueError(f"not a MIDR range: {node.text}")
    name = args[0].text
    return Range(model.implementer, model.part, low, high, _join(guard, node.guard), model=name)


def _join(outer: Guard, inner: Guard) -> Guard:
    return tuple(dict.fromkeys((*outer, *inner)))


def _midr_items(items: Sequence[Node], models: Mapping[str, Model]) -> tuple[Range, ...]:
    found = (midr_range(item, models) for item in items)
    return tuple(r for r in found if r is not None)


def _named_list(toks: Sequence[Token], name: str, models: Mapping[str, Model]) -> tuple[Range, ...]:
    found = [items for n, items, _ in arrays(toks, "midr_range") if n == name]
    if len(found) != 1:
        raise ValueError(f"{len(found)} MIDR lists named {name}")
    return _midr_items(found[0], models)


def _bhb_loops(
    text: str, toks: Sequence[Token], models: Mapping[str, Model]
) -> tuple[tuple[int, tuple[Range, ...]], ...]:
    """``if (is_midr_in_range_list(..., LIST)) k = N;`` in the kernel's order."""
    pattern = r"is_midr_in_range_list\((?:[^(),]*\(\)\s*,\s*)?(\w+)\)\)\s*k\s*=\s*(\d+)\s*;"
    pairs = re.findall(pattern, strip_comments(text))
    if not pairs:
        raise ValueError("proton-pack.c: no Spectre-BHB loop lists")
    return tuple((int(k), _named_list(toks, name, models)) for name, k in pairs)


# ---------------------------------------------------------------- arm64_errata[]


@dataclass
class _Entry:
    desc: str = ""
    capability: str = ""
    matcher: str = ""
    ranges: list[Range] = field(default_factory=list)
    fixed: tuple[tuple[int, int], ...] = ()
    sublist: str = ""
    kryo_model: str = ""


def _capabilities(
    text: str, toks: Sequence[Token], models: Mapping[str, Model]
) -> tuple[Capability, ...]:
    midr_lists = {n: items for n, items, _ in arrays(toks, "midr_range")}
    cap_lists = {n: items for n, items, _ in arrays(toks, "arm64_cpu_capabilities")}
    found: list[Capability] = []
    for item in cap_lists["arm64_errata"]:
        if item.kind != "braces" or not item.children:
            continue
        entry = _entry(item, models, midr_lists)
        ranges = list(entry.ranges)
        if entry.sublist:
            for sub in cap_lists[entry.sublist]:
                if sub.kind == "braces" and sub.children:
                    ranges += _sub_ranges(_entry(sub, models, midr_lists), sub.guard, models)
        if not ranges and entry.matcher:
            ranges = _matcher_ranges(text, entry.matcher, models, midr_lists)
        found.append(
            Capability(entry.capability, entry.desc, entry.matcher, item.guard, tuple(ranges))
        )
    return tuple(found)


def _matcher_ranges(
    text: str, matcher: str, models: Mapping[str, Model], midr_lists: Mapping[str, list[Node]]
) -> list[Range]:
    """The MIDR ranges a custom matcher of cpu_errata.c tests: the lists it names and the
    ranges it spells inline (none for matchers that read no MIDR)."""
    body = re.search(rf"\b{matcher}\s*\([^)]*\)\s*\{{(.*?)\n\}}", text, re.S)
    if body is None:
        return []
    ranges: list[Range] = []
    for name in re.findall(r"is_midr_in_range_list\((\w+)\)", body.group(1)):
        ranges += _midr_items(midr_lists[name], models)
    for node in _calls(tokens(body.group(1))):
        found = midr_range(node, models)
        if found is not None:
            ranges.append(found)
    return ranges


def _calls(toks: Sequence[Token]) -> list[Node]:
    names = ("MIDR_ALL_VERSIONS", "MIDR_RANGE", "MIDR_REV_RANGE", "MIDR_REV")
    calls = []
    for i, tok in enumerate(toks[:-1]):
        if tok.text in names and toks[i + 1].text == "(":
            args, _ = parse_nodes(toks, i + 2, ")")
            calls.append(Node("call", tok.text, tuple(args), tok.guard))
    return calls


def _sub_ranges(entry: _Entry, guard: Guard, models: Mapping[str, Model]) -> list[Range]:
    if entry.kryo_model:
        model = models[entry.kryo_model]
        return [
            Range(model.implementer, model.part, *ALL_VERSIONS, guard, (), True, entry.kryo_model)
        ]
    return [replace(r, guard=_join(guard, r.guard), fixed=entry.fixed) for r in entry.ranges]


def _entry(item: Node, models: Mapping[str, Model], midr_lists: Mapping[str, list[Node]]) -> _Entry:
    entry = _Entry()
    for child in item.children:
        parts = flatten(child)
        if parts[0].text == "." and any(p.text == "=" for p in parts):
            equals = next(i for i, p in enumerate(parts) if p.text == "=")
            key = "".join(p.text for p in parts[1:equals])
            _designated(entry, key, parts[equals + 1 :], models, midr_lists)
        elif parts[0].kind == "call":
            _macro(entry, parts[0], models, midr_lists)
    if entry.fixed:
        entry.ranges = [replace(r, fixed=entry.fixed) for r in entry.ranges]
    return entry


def _designated(
    entry: _Entry,
    key: str,
    value: Sequence[Node],
    models: Mapping[str, Model],
    midr_lists: Mapping[str, list[Node]],
) -> None:
    if key == "desc":
        entry.desc = "".join(_c_string(v.text) for v in value)
    elif key == "capability":
        entry.capability = value[0].text
    elif key == "matches":
        entry.matcher = value[0].text
    elif key in ("midr_range_list",):
        entry.ranges = list(_midr_items(midr_lists[value[0].text], models))
    elif key == "match_list":
        entry.sublist = value[0].text
    elif key == "midr_range.model":
        entry.kryo_model = value[0].text
    elif key == "midr_range":
        found = midr_range(value[0], models)
        entry.ranges = [] if found is None else [found]


def _macro(
    entry: _Entry, call: Node, models: Mapping[str, Model], midr_lists: Mapping[str, list[Node]]
) -> None:
    name = call.text
    if name == "MIDR_FIXED":
        entry.fixed = ((integer(call.children[0]), integer(call.children[1])),)
    elif name in ("ERRATA_MIDR_RANGE_LIST", "CAP_MIDR_RANGE_LIST"):
        entry.matcher = entry.matcher or "is_affected_midr_range_list"
        entry.ranges = list(_list_argument(call.children[0], models, midr_lists))
    elif name.startswith(("ERRATA_MIDR_", "CAP_MIDR_")):
        entry.matcher = entry.matcher or "is_affected_midr_range"
        found = midr_range(call, models)
        entry.ranges = [] if found is None else [found]


def _list_argument(
    node: Node, models: Mapping[str, Model], midr_lists: Mapping[str, list[Node]]
) -> tuple[Range, ...]:
    """A list array's name, or an inline ``((const struct midr_range[]) { ... })``."""
    if node.kind == "atom":
        return _midr_items(midr_lists[node.text], models)
    inner = node
    while inner.kind in ("parens", "seq"):
        inner = next(c for c in reversed(inner.children) if c.kind in ("braces", "parens", "seq"))
    if inner.kind != "braces":
        raise ValueError(f"not a MIDR list: {node.text}")
    return _midr_items(inner.children, models)


def _c_string(literal: str) -> str:
    return literal[1:-1].encode().decode("unicode_escape")
