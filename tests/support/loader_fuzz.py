"""Structure-aware fuzzing of the CLI's file loaders (hypothesis), driving ``main()`` in-process.

Each case takes a real document (a shipped host profile, or the pool model of
two of them), applies one mutation to its JSON tree or its bytes, writes it
to a file and runs ``qemu-errata check`` or ``baseline`` on it through the
command line's own ``main()``; other cases give ``render --domain`` a domain XML
re-encoded, with a DTD or damaged, and ``probe --backend sysfs`` a tree whose
register file is a FIFO, a link to /dev/zero, huge or binary. The oracle: the exit
status is 0, 1 or 2, never an internal error; no traceback; a refusal (2) is exactly one line
naming the file; stdout is encodable UTF-8; and mutations that make a
document invalid in every reading (duplicate keys, NaN, a number past our
bound, nesting past our depth, a lone surrogate, an unknown key in an object
of fixed keys) are refused with 2.

``python tests/support/loader_fuzz.py --cases 100000`` (or
``scripts/fuzz loaders``) runs a long campaign and prints the counts; the
default test suite runs a short one (tests/unit/test_loader_fuzz.py).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import io
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support.domains import DOMAIN

from qemu_errata.commands import main as command_line
from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.pool import baseline
from qemu_errata.errors import IncompatiblePoolError

# Objects whose keys the format fixes (a new key there must be refused), by key path;
# "*" stands for any list index.
FIXED_KEY_OBJECTS = {
    (),
    ("implementations", "*"),
    ("target_implementations", "*"),
    ("losses", "*"),
}
SLOW_S = 2.0  # CPU seconds for one case


# --- documents as trees that can hold what json.dumps cannot write -----------------


@dataclass(frozen=True)
class Raw:
    """Text written verbatim: NaN, a 5,000-digit number, 100,000 brackets, a lone surrogate."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A JSON object as written: its (key, value) pairs, a key possibly twice."""

    items: tuple[tuple[str | Raw, Any], ...]


def to_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return Pairs(tuple((k, to_tree(v)) for k, v in value.items()))
    if isinstance(value, list):
        return [to_tree(v) for v in value]
    return value


def dump(tree: Any) -> str:
    if isinstance(tree, Raw):
        return tree.text
    if isinstance(tree, Pairs):
        return "{" + ", ".join(f"{dump(k)}: {dump(v)}" for k, v in tree.items) + "}"
    if isinstance(tree, list):
        return "[" + ", ".join(dump(v) for v in tree) + "]"
    return json.dumps(tree)


Path_ = tuple[int, ...]


def positions(tree: Any, where: Path_ = ()) -> Iterator[Path_]:
    """Every node's position (list index or pair index at each level)."""
    yield where
    if isinstance(tree, Pairs):
        for index, (_, value) in enumerate(tree.items):
            yield from positions(value, (*where, index))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield from positions(value, (*where, index))


def node(tree: Any, where: Path_) -> Any:
    for index in where:
        tree = tree.items[index][1] if isinstance(tree, Pairs) else tree[index]
    return tree


def key_path(tree: Any, where: Path_) -> tuple[str, ...]:
    """The names on the way to a node: keys, and "*" for list indexes."""
    names = []
    for index in where:
        if isinstance(tree, Pairs):
            key, tree = tree.items[index]
            names.append(key if isinstance(key, str) else "?")
        else:
            names.append("*")
            tree = tree[index]
    return tuple(names)


def replaced(tree: Any, where: Path_, new: Any) -> Any:
    if not where:
        return new
    first, rest = where[0], where[1:]
    if isinstance(tree, Pairs):
        items = list(tree.items)
        key, value = items[first]
        items[first] = (key, replaced(value, rest, new))
        return Pairs(tuple(items))
    values = list(tree)
    values[first] = replaced(values[first], rest, new)
    return values


# --- the real documents ------------------------------------------------------------


def _real_documents() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    names = embedded_profile_names()
    profiles = [load_embedded_profile(name) for name in names]
    models = []
    for first, second in itertools.combinations(profiles, 2):
        with contextlib.suppress(IncompatiblePoolError):
            models.append(baseline([first, second]).to_json())
        if len(models) == 6:
            break
    return [p.to_json() for p in profiles], models


PROFILES, MODELS = _real_documents()


@contextlib.contextmanager
def one_parser() -> Iterator[None]:
    """One parser for all cases: building it is most of the time of a case."""
    build = command_line.build_parser
    command_line.build_parser = functools.cache(build)
    try:
        yield
    finally:
        command_line.build_parser = build


# --- mutations ---------------------------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["0x", "0x1f", "0X_1", "0x" + "f" * 17, " 0x1", "0x1 ", "-0x1", ""])
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@dataclass
class Case:
    kind: str
    text: bytes
    must_refuse: bool


def _lone_surrogate(draw: st.DrawFn) -> Raw:
    code = draw(st.integers(0xD800, 0xDFFF))
    prefix = draw(st.text(alphabet="abc-", max_size=4))
    return Raw(json.dumps(prefix)[:-1] + f"\\u{code:04x}" + '"')


def _number_past_bound(draw: st.DrawFn) -> Raw:
    digits = draw(st.integers(31, 20000))
    return Raw(
        draw(st.sampled_from(["", "-"])) + "9" * digits + draw(st.sampled_from(["", ".5", "e3"]))
    )


Mutation = Callable[[st.DrawFn, Any, Path_], tuple[Any, bool] | None]


def _wrong_type(draw: st.DrawFn, tree: Any, where: Path_) -> tuple[Any, bool] | None:
    return replaced(tree, where, to_tree(draw(json_values))), False


def _delete(draw: st.DrawFn, tree: Any, where: Path_) -> tuple[Any, bool] | None:
    if not where:
        return None
    parent, gone = node(tree, where[:-1]), where[-1]
    if isinstance(parent, Pairs):
        kept: Any = Pairs(tuple(p for i, p in enumerate(parent.items) if i != gone))
    else:
        kept = [v for i, v in enumerate(parent) if i != gone]
    return replaced(tree, where[:-1], kept), False


def _unknown_key(draw: st.DrawFn, tree: Any, where: Path_) -> tuple[Any, bool] | None:
    target = node(tree, where)
    if not isinstance(target, Pairs):
        return None
    keys = {k for k, _ in target.items}
    key = draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in keys))
    grown = Pairs((*target.items, (key, to_tree(draw(json_values)))))
    return replaced(tree, where, grown), key_path(tree, where) in FIXED_KEY_OBJECTS


def _duplicate_key(draw: st.DrawFn, tree: Any, where: Path_) -> tuple[Any, bool] | None:
    target = node(tree, where)
    if not isinstance(target, Pairs) or not target.items:
        return None
    key, value = draw(st.sampled_from(target.items))
    again = draw(st.sampled_from([value, to_tree(draw(json_values))]))
    return replaced(tree, where, Pairs((*target.items, (key, again)))), True


def _surrogate_key(draw: st.DrawFn, tree: Any, where: Path_) -> tuple[Any, bool] | None:
    target = node(tree, where)
    if not isinstance(target, Pairs):
        return None
    grown = Pairs((*target.items, (_lone_surrogate(draw), to_tree(draw(json_values)))))
    return replaced(tree, where, grown), True


def _deep(draw: st.DrawFn, tree: Any, where: Path_) -> tuple[Any, bool] | None:
    depth = draw(st.integers(33, 200_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return replaced(tree, where, Raw(opener * depth + "1" + closer * depth)), True


def _huge_number(draw: st.DrawFn, tree: Any, where: Path_) -> tuple[Any, bool] | None:
    return replaced(tree, where, _number_past_bound(draw)), True


def _surrogate(draw: st.DrawFn, tree: Any, where: Path_) -> tuple[Any, bool] | None:
    return replaced(tree, where, _lone_surrogate(draw)), True


def _not_a_number(draw: st.DrawFn, tree: Any, where: Path_) -> tuple[Any, bool] | None:
    constant = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999"]))
    return replaced(tree, where, Raw(constant)), True


def _control_characters(draw: st.DrawFn, tree: Any, where: Path_) -> tuple[Any, bool] | None:
    text = draw(st.text(alphabet="ab\n\r\t\x1b\x00\u2028", min_size=1, max_size=8))
    return replaced(tree, where, text), False


def _long_value(draw: st.DrawFn, tree: Any, where: Path_) -> tuple[Any, bool] | None:
    size = draw(st.integers(1000, 100_000))
    long_values = ["x" * size, Raw(json.dumps(list(range(size)))), Raw(json.dumps([0] * size))]
    return replaced(tree, where, draw(st.sampled_from(long_values))), False


MUTATIONS: dict[str, Mutation] = {
    "wrong_type": _wrong_type,
    "delete": _delete,
    "unknown_key": _unknown_key,
    "duplicate_key": _duplicate_key,
    "surrogate_key": _surrogate_key,
    "deep": _deep,
    "huge_number": _huge_number,
    "surrogate": _surrogate,
    "not_a_number": _not_a_number,
    "control_characters": _control_characters,
    "long_value": _long_value,
}


@st.composite
def cases(draw: st.DrawFn, documents: list[dict[str, Any]]) -> Case:
    """One mutation of one document (or a byte-level mutation of its text)."""
    tree = to_tree(draw(st.sampled_from(documents)))
    where = draw(st.sampled_from(list(positions(tree))))
    kind = draw(st.sampled_from([*MUTATIONS, "bytes"]))
    mutated = None if kind == "bytes" else MUTATIONS[kind](draw, tree, where)
    tree, must_refuse = mutated or (tree, False)
    text = dump(tree).encode("utf-8", "surrogatepass")
    if kind == "bytes":
        text = _mutate_bytes(draw, text)
    return Case(kind, text, must_refuse)


def _mutate_bytes(draw: st.DrawFn, text: bytes) -> bytes:
    at = draw(st.integers(0, len(text)))
    how = draw(st.sampled_from(["truncate", "insert", "flip", "bom"]))
    if how == "truncate":
        return text[:at]
    if how == "insert":
        return text[:at] + draw(st.binary(min_size=1, max_size=4)) + text[at:]
    if how == "flip" and at < len(text):
        return text[:at] + bytes([text[at] ^ (1 << draw(st.integers(0, 7)))]) + text[at + 1 :]
    return b"\xef\xbb\xbf" + text


# --- domain XML for render --domain, and sysfs trees for probe --backend sysfs -----------

# Encodings libxml2 reads; EBCDIC makes its message span two lines.
DOMAIN_ENCODINGS = [
    ("IBM037", "cp037"),
    ("UTF-16", "utf-16"),
    ("Shift_JIS", "shift_jis"),
    ("UTF-7", "utf-7"),
    ("UCS-4", "utf-32-be"),
    ("ISO-8859-1", "latin-1"),
]


@st.composite
def domain_cases(draw: st.DrawFn) -> Case:
    """The test domain, re-encoded, given a DTD, or damaged byte by byte."""
    name = draw(st.text(alphabet="abcxyz-\u00e9\u65e5", min_size=1, max_size=8))
    text = DOMAIN.decode().replace("<name>pool-vm<", f"<name>{name}<", 1)
    kind = ["domain_encoding", "domain_dtd", "domain_bytes"][draw(st.integers(0, 2))]
    if kind == "domain_encoding":
        declared, codec = draw(st.sampled_from(DOMAIN_ENCODINGS))
        data = f'<?xml version="1.0" encoding="{declared}"?>\n{text}'.encode(codec, "replace")
    elif kind == "domain_dtd":
        dtd = draw(
            st.sampled_from(
                [
                    '<!DOCTYPE domain [<!ENTITY % pe "<!-- -->"> %pe; '
                    '<!ATTLIST vcpu placement CDATA #FIXED "auto">]>',
                    '<!DOCTYPE domain [<!ENTITY x SYSTEM "/etc/shadow">]>',
                    "<!DOCTYPE domain ["
                    + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 9))
                    + '<!ENTITY l0 "lol">]>',
                ]
            )
        )
        reference = draw(st.sampled_from(["&x;", "&l8;", ""]))
        data = (dtd + text.replace("</name>", reference + "</name>", 1)).encode()
    else:
        data = _mutate_bytes(draw, text.encode())
    return Case(kind, data, must_refuse=False)


def _plant_sysfs(root: Path, how: str, cpus: int, at: int, register: str) -> tuple[Path, bool]:
    """A sysfs tree of ``cpus`` CPUs where CPU ``at``'s ``register`` file is ``how``;
    the file, and whether the probe must refuse the tree."""
    if root.exists():
        shutil.rmtree(root)
    for cpu in range(cpus):
        identification = root / f"devices/system/cpu/cpu{cpu}/regs/identification"
        identification.mkdir(parents=True)
        (identification / "midr_el1").write_text("0x00000000414fd0c1\n")
        (identification / "revidr_el1").write_text("0x0\n")
    planted = root / f"devices/system/cpu/cpu{at}/regs/identification/{register}"
    planted.unlink()
    if how == "fifo":
        os.mkfifo(planted)
    elif how == "dev-zero":
        planted.symlink_to("/dev/zero")
    elif how == "huge":
        planted.write_bytes(b"0" * 100_000)
    elif how == "binary":
        planted.write_bytes(bytes(range(256)))
    else:
        planted.write_text("0x1\n")
    return planted, how != "plain"


SYSFS_PLANTS = ["fifo", "dev-zero", "huge", "binary", "plain"]
TARGETS = ["profile", "model", "profile", "model", "domain", "sysfs"]


# --- running one case through the command line --------------------------------------


@dataclass
class Tally:
    cases: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)
    slowest_s: float = 0.0
    progress: bool = False  # a line on stderr every 10,000 cases

    def report(self) -> str:
        lines = [
            f"{self.cases} cases; exit statuses {dict(sorted(self.statuses.items()))}; "
            f"failures {len(self.failures)}; slowest {self.slowest_s:.2f} s of CPU",
            "mutations: " + ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items())),
        ]
        lines.extend(self.failures[:10])
        return "\n".join(lines)


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` with stdout and stderr captured as the real ones would encode them."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = command_line.main(argv)
        out.flush()
        err.flush()
    return status, _text(out), _text(err)


def _text(stream: io.TextIOWrapper) -> str:
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8", "replace")


def judge(case: Case, argv: list[str], path: Path, tally: Tally) -> None:
    started = time.process_time()  # CPU time: other work on the machine does not count
    try:
        status, _, stderr = run_main(argv)
    except BaseException as error:  # what the oracle counts: anything escaping main()
        status, stderr = -1, f"escaped main(): {type(error).__name__}: {error}"
    elapsed = time.process_time() - started
    tally.cases += 1
    tally.statuses[status] += 1
    tally.kinds[case.kind] += 1
    tally.slowest_s = max(tally.slowest_s, elapsed)
    if tally.progress and tally.cases % 10_000 == 0:
        print(tally.report().splitlines()[0], file=sys.stderr, flush=True)
    problem = None
    if status not in (0, 1, 2):
        problem = f"status {status}"
    elif "Traceback" in stderr:
        problem = "traceback"
    elif status == 2 and (len(stderr.splitlines()) != 1 or not stderr.startswith("qemu-errata: ")):
        problem = "not one line"
    elif len(stderr) > 1000:
        problem = f"a message of {len(stderr)} characters"
    elif status == 2 and str(path) not in stderr:
        problem = "does not name the file"
    elif case.must_refuse and status != 2:
        problem = f"accepted (status {status}), must be refused"
    elif elapsed > SLOW_S:
        problem = f"slow: {elapsed:.1f} s"
    if problem:
        tally.failures.append(
            f"{case.kind}: {problem}: {stderr.strip()[:300]!r} input {case.text[:200]!r}"
        )


def fuzz(count: int, tally: Tally, directory: Path) -> Callable[[], None]:
    """A hypothesis test of ``count`` cases counting into ``tally``."""
    profile_path, model_path = directory / "profile.json", directory / "model.json"
    domain_path = directory / "domain.xml"
    good_profile, good_model = directory / "good-profile.json", directory / "good-model.json"
    # Renamed: baseline refuses two profiles of one host name, whatever else they say.
    good_profile.write_text(json.dumps({**PROFILES[0], "host": "fuzz-reference-host"}))
    good_model.write_text(json.dumps(MODELS[0]))

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def campaign(data: st.DataObject) -> None:
        target = TARGETS[data.draw(st.integers(0, len(TARGETS) - 1))]
        if target == "domain":
            case = data.draw(domain_cases())
            domain_path.write_bytes(case.text)
            argv = ["render", str(good_model), "--domain", str(domain_path)]
            judge(case, argv, domain_path, tally)
        elif target == "sysfs":
            how = SYSFS_PLANTS[data.draw(st.integers(0, len(SYSFS_PLANTS) - 1))]
            cpus = data.draw(st.integers(1, 8))
            at = data.draw(st.integers(0, cpus - 1))
            register = data.draw(st.sampled_from(["midr_el1", "revidr_el1"]))
            planted, must_refuse = _plant_sysfs(directory / "sys", how, cpus, at, register)
            case = Case(f"sysfs_{how}", b"", must_refuse)
            argv = ["probe", "--backend", "sysfs", "--sysfs-root", str(directory / "sys")]
            judge(case, [*argv, "-o", str(directory / "probed.json")], planted, tally)
        elif target == "profile":
            case = data.draw(cases(PROFILES))
            profile_path.write_bytes(case.text)
            argv = data.draw(
                st.sampled_from(
                    [
                        ["check", str(good_model), str(profile_path)],
                        ["baseline", str(good_profile), str(profile_path)],
                        ["baseline", "--json", str(profile_path), str(good_profile)],
                    ]
                )
            )
            judge(case, argv, profile_path, tally)
        else:
            case = data.draw(cases(MODELS))
            model_path.write_bytes(case.text)
            judge(case, ["check", str(model_path), str(good_profile)], model_path, tally)

    return campaign


def main_fuzz() -> int:
    parser = argparse.ArgumentParser(description="fuzz the qemu-errata file loaders")
    parser.add_argument("--cases", type=int, default=100_000)
    args = parser.parse_args()
    tally = Tally(progress=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="qemu-errata-fuzz-") as directory, one_parser():
        fuzz(args.cases, tally, Path(directory))()
    print(tally.report())
    print(f"{time.monotonic() - started:.0f} s")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main_fuzz())
