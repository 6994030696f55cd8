"""One strict reader for every data table of the package: registers.toml, errata.toml,
errata-effects.toml, vmms.toml, kernel-changes.toml, debian-kernels.toml and cpus.json.

Each table declares the shape of its rows (``Row``: each key's type, whether it
is required, an integer's width in bits, the words a string may be, the keys
no two rows share, the ranges whose ``from`` must not pass ``to``); ``check``
holds a parsed document to it, as strictly as the kernel's sysreg generator
reads its file: an unknown key, a wrong type (the string "false" is not a
boolean), a value wider than its field, a range backwards or a duplicate is
a CatalogueError of one line naming the file, the row and the key. What a
table means beyond its shape (bits covered once, known registers) stays with
its loader.

Standard library only, nothing imported at run time but the errors: the
libvirt hook reads cpus.json through this on a refusal.
"""

from __future__ import annotations

from qemu_errata.errors import CatalogueError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

# The names the messages give each value type.
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", float: "a number"}


class Value:
    """What one key holds: a scalar of ``kind`` (an int at most ``bits`` wide, a str one of
    ``words``), a list of ``items``, a table of ``row``, or a map whose keys ``key_check``
    judges (JSON object keys such as "0x41") to ``items``; ``check`` judges the value
    further. A check returns a problem in words, or None."""

    __slots__ = ("bits", "check", "items", "key_check", "kind", "length", "row", "words")

    def __init__(
        self,
        kind: type,
        *,
        bits: int | None = None,
        words: Sequence[str] = (),
        items: Value | None = None,
        row: Row | None = None,
        length: int | None = None,
        key_check: Callable[[str], str | None] | None = None,
        check: Callable[[object], str | None] | None = None,
    ) -> None:
        self.kind = kind
        self.bits = bits
        self.words = tuple(words)
        self.items = items
        self.row = row
        self.length = length
        self.key_check = key_check
        self.check = check


class Row:
    """The keys a row (a TOML table, a JSON object) may have; ``required`` ones it must.

    ``name`` is the key whose value names the row in messages; ``unique`` the
    keys no two rows of one list share; ``ranges`` (from_key, to_key, order)
    pairs whose order(from) must not exceed order(to).
    """

    __slots__ = ("keys", "name", "ranges", "required", "unique")

    def __init__(
        self,
        keys: Mapping[str, Value],
        *,
        required: Sequence[str] = (),
        name: str | None = None,
        unique: Sequence[str] = (),
        ranges: Sequence[tuple[str, str, Callable[[object], int]]] = (),
    ) -> None:
        self.keys = dict(keys)
        self.required = tuple(required)
        self.name = name
        self.unique = tuple(unique)
        self.ranges = tuple(ranges)


def check(document: object, row: Row, origin: str) -> None:
    """CatalogueError naming ``origin``, the row and the key, unless ``document`` is a ``row``."""
    _row(document, row, f"{origin}:", "")


def _row(data: object, row: Row, where: str, key_path: str) -> None:
    if not isinstance(data, dict):
        raise CatalogueError(f"{where} {key_path or 'the file'}: not a table")
    for key in row.required:
        if key not in data:
            raise CatalogueError(f"{where} key {key!r}: missing")
    for key, value in data.items():
        declared = row.keys.get(key)
        if declared is None:
            known = ", ".join(sorted(row.keys))
            raise CatalogueError(f"{where} key {key!r}: not a key of this table (known: {known})")
        _value(value, declared, where, key)
    for start, end, order in row.ranges:
        if start in data and end in data and order(data[start]) > order(data[end]):
            raise CatalogueError(
                f"{where} key {start!r}: {data[start]!r} is after {end!r} {data[end]!r}"
            )


def _value(value: object, declared: Value, where: str, key: str) -> None:
    if declared.kind is list:
        _list(value, declared, where, key)
    elif declared.kind is dict:
        _mapping(value, declared, where, key)
    else:
        _scalar(value, declared, where, key)
    problem = declared.check(value) if declared.check else None
    if problem:
        raise CatalogueError(f"{where} key {key!r}: {problem}")


def _scalar(value: object, declared: Value, where: str, key: str) -> None:
    # bool is an int in Python: an integer key refuses true, a boolean key refuses 1.
    if type(value) is not declared.kind and not (declared.kind is float and type(value) is int):
        shown = f"{value!r}" if isinstance(value, str | int | float) else type(value).__name__
        raise CatalogueError(f"{where} key {key!r}: {shown} is not {_TYPE_NAMES[declared.kind]}")
    if declared.bits is not None and isinstance(value, int) and not 0 <= value < 1 << declared.bits:
        shown = f"{value:#x}" if declared.bits > 8 else str(value)  # bit numbers in decimal
        raise CatalogueError(f"{where} key {key!r}: {shown} does not fit in {declared.bits} bits")
    if declared.words and value not in declared.words:
        raise CatalogueError(
            f"{where} key {key!r}: {value!r} is not one of {', '.join(_shown(declared.words))}"
        )


def _shown(words: Sequence[str]) -> list[str]:
    return [word or '""' for word in words]


def _list(value: object, declared: Value, where: str, key: str) -> None:
    if not isinstance(value, list):
        raise CatalogueError(f"{where} key {key!r}: not a list")
    if declared.length is not None and len(value) != declared.length:
        raise CatalogueError(f"{where} key {key!r}: {len(value)} items, not {declared.length}")
    if declared.row is not None:
        _rows(value, declared.row, where, key)
    elif declared.items is not None:
        for index, item in enumerate(value):
            _value(item, declared.items, where, f"{key}[{index}]")


def _rows(rows: list[object], row: Row, where: str, key: str) -> None:
    seen: dict[str, dict[object, str]] = {name: {} for name in row.unique}
    for index, item in enumerate(rows):
        named = item.get(row.name) if isinstance(item, dict) and row.name else None
        label = f"{where} {key}[{index}]" + (f" {named}" if isinstance(named, str) else "")
        _row(item, row, label + ",", key)
        assert isinstance(item, dict)  # _row refused anything else
        for unique in row.unique:
            if unique in item:
                marker = repr(item[unique])
                first = seen[unique].setdefault(marker, label)
                if first != label:
                    raise CatalogueError(
                        f"{label}, key {unique!r}: {item[unique]!r} again (first in {first})"
                    )


def _mapping(value: object, declared: Value, where: str, key: str) -> None:
    if not isinstance(value, dict):
        raise CatalogueError(f"{where} key {key!r}: not a table")
    if declared.row is not None:
        _row(value, declared.row, f"{where} {key},", key)
        return
    for name, item in value.items():
        problem = declared.key_check(name) if declared.key_check else None
        if problem:
            raise CatalogueError(f"{where} key {key!r}: {problem}")
        if declared.items is not None:
            _value(item, declared.items, where, f"{key}.{name}")


def numbers(count: int, *, empty: bool = False) -> Callable[[object], str | None]:
    """A value check: ``count`` dot-separated decimal numbers ("7.2"), or "" when ``empty``."""

    def check(value: object) -> str | None:
        parts = str(value).split(".")
        if (empty and value == "") or (
            len(parts) == count and all(p.isascii() and p.isdigit() for p in parts)
        ):
            return None
        shown = ".".join(["N"] * count) + (' or ""' if empty else "")
        return f"{value!r} is not {shown}"

    return check


def hex_key(bits: Callable[[], int]) -> Callable[[str], str | None]:
    """A key check: the key is a hex number ("0x41") of at most ``bits()`` bits."""

    def check(key: str) -> str | None:
        try:
            number = int(key, 16) if key.startswith("0x") else -1
        except ValueError:
            number = -1
        if not 0 <= number < 1 << bits():
            return f"{key!r} is not a hex number of {bits()} bits"
        return None

    return check
