"""Just enough of C to read the kernel's MIDR tables: guards, tokens, initialisers (pure).

The kernel files are read, never copied: what comes out are names and numbers.
A token carries its *guard*, the ``#if``/``#ifdef`` conditions around it, as a
tuple of levels; a level is the set of CONFIG symbols of which any one enables it
(``#if defined(A) || defined(B)``). A level that is not such a list (``#ifndef``,
``#else``) is kept as a symbol starting with ``!`` and never holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

Guard = tuple[frozenset[str], ...]

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|[A-Za-z_]\w*|\S')
_DEFINED = re.compile(r"(?:defined|IS_ENABLED|IS_BUILTIN)\s*\(\s*CONFIG_(\w+)\s*\)")


@dataclass(frozen=True)
class Token:
    text: str
    guard: Guard


def strip_comments(text: str) -> str:
    """The text without comments, line breaks kept (so line structure survives)."""
    return _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def tokens(text: str) -> list[Token]:
    """The tokens outside preprocessor lines, each with the guard around it."""
    lines = strip_comments(text).replace("\\\n", " ").splitlines()
    stack: list[frozenset[str]] = []
    out: list[Token] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            _directive(stripped[1:].strip(), stack)
            continue
        guard = tuple(stack)
        out.extend(Token(m.group(0), guard) for m in _TOKEN.finditer(line))
    return out


def _directive(directive: str, stack: list[frozenset[str]]) -> None:
    word, rest = [*directive.split(None, 1), ""][:2]
    rest = rest.strip()
    if word == "ifdef":
        stack.append(frozenset({rest.removeprefix("CONFIG_")}))
    elif word in ("ifndef",):
        stack.append(frozenset({"!" + rest}))
    elif word == "if":
        names = _DEFINED.findall(rest)
        only_ors = _DEFINED.sub("", rest).replace("||", "").strip() == ""
        stack.append(frozenset(names) if names and only_ors else frozenset({"!" + rest}))
    elif word in ("else", "elif"):
        stack[-1] = frozenset({"!else"})
    elif word == "endif":
        stack.pop()


def guard_holds(guard: Guard, enabled: frozenset[str]) -> bool:
    """Whether a configuration with ``enabled`` symbols (=y) builds what ``guard`` guards."""
    return all(level & enabled for level in guard)


def guard_symbols(guard: Guard) -> tuple[str, ...]:
    return tuple(sorted({s for level in guard for s in level if not s.startswith("!")}))


# ---------------------------------------------------------------- definitions


def defines(text: str) -> dict[str, str]:
    """``#define NAME VALUE`` lines without parameters, value as written."""
    found: dict[str, str] = {}
    for match in re.finditer(
        r"^#define[ \t]+(\w+)[ \t]+(.+?)$", strip_comments(text).replace("\\\n", " "), re.M
    ):
        found[match.group(1)] = match.group(2).strip()
    return found


@dataclass(frozen=True)
class Model:
    """A MIDR model constant of cputype.h: implementer and part number."""

    implementer: int
    part: int


def cpu_models(cputype_h: str) -> dict[str, Model]:
    """Every ``MIDR_X`` of cputype.h that names a model (``MIDR_CPU_MODEL(IMP, PART)``)."""
    table = defines(cputype_h)
    models: dict[str, Model] = {}
    for name, value in table.items():
        match = re.fullmatch(r"MIDR_CPU_MODEL\(\s*(\w+)\s*,\s*(\w+)\s*\)", value)
        if match:
            models[name] = Model(_number(table, match.group(1)), _number(table, match.group(2)))
    for name, value in table.items():  # aliases: #define MIDR_X MIDR_Y
        if name not in models and value in models:
            models[name] = models[value]
    return models


def _number(table: dict[str, str], name: str) -> int:
    value = table.get(name, name)
    return int(value.rstrip("uUlL"), 0)


# ---------------------------------------------------------------- initialisers


@dataclass(frozen=True)
class Node:
    """A parsed initialiser: a call ``NAME(args)``, a brace list, or a plain token run."""

    kind: str  # "call", "braces", "atom"
    text: str  # the call's name or the atom's text
    children: tuple[Node, ...]
    guard: Guard


def parse_nodes(toks: Sequence[Token], start: int, stop: str) -> tuple[list[Node], int]:
    """Comma-separated items from ``start`` up to the closing ``stop``; returns the index
    after it. Each item is one Node (a run of tokens becomes an atom or a call)."""
    items: list[Node] = []
    current: list[Node] = []
    i = start
    while i < len(toks):
        tok = toks[i]
        if tok.text == stop:
            if current:
                items.append(_item(current))
            return items, i + 1
        if tok.text == ",":
            if current:
                items.append(_item(current))
            current = []
            i += 1
        elif tok.text == "{":
            children, i = parse_nodes(toks, i + 1, "}")
            current.append(Node("braces", "{}", tuple(children), tok.guard))
        elif tok.text == "(":
            children, i = parse_nodes(toks, i + 1, ")")
            if current and current[-1].kind == "atom" and re.fullmatch(r"\w+", current[-1].text):
                name = current.pop()
                current.append(Node("call", name.text, tuple(children), name.guard))
            else:
                current.append(Node("parens", "()", tuple(children), tok.guard))
        else:
            current.append(Node("atom", tok.text, (), tok.guard))
            i += 1
    raise ValueError(f"unbalanced initialiser: no closing {stop!r}")


def _item(parts: list[Node]) -> Node:
    if len(parts) == 1:
        return parts[0]
    return Node("seq", " ".join(p.text for p in parts), tuple(parts), parts[0].guard)


def arrays(toks: Sequence[Token], struct: str) -> Iterator[tuple[str, list[Node], int]]:
    """``struct <struct> NAME[] = { ... }`` definitions: name, items, token index."""
    for i in range(len(toks) - 5):
        if toks[i].text != "struct" or toks[i + 1].text != struct:
            continue
        j = i + 2
        while j < len(toks) and toks[j].text in ("const", "__maybe_unused", "__initconst"):
            j += 1
        if j + 4 < len(toks) and [t.text for t in toks[j + 1 : j + 5]] == ["[", "]", "=", "{"]:
            items, _ = parse_nodes(toks, j + 5, "}")
            yield toks[j].text, items, i


def flatten(node: Node) -> list[Node]:
    """A ``seq`` node's parts, or the node itself."""
    return list(node.children) if node.kind == "seq" else [node]


def integer(node: Node) -> int:
    """A number as the kernel writes one here: 0x.., decimal, BIT(n), MIDR_CPU_VAR_REV(v, r)."""
    if node.kind == "atom":
        return int(node.text.rstrip("uUlL"), 0)
    if node.kind == "call" and node.text == "BIT":
        return 1 << integer(node.children[0])
    if node.kind == "call" and node.text == "MIDR_CPU_VAR_REV":
        return integer(node.children[0]) << 20 | integer(node.children[1])
    if node.kind == "parens" and len(node.children) == 1:
        return integer(node.children[0])
    raise ValueError(f"not a number: {node.text}")
