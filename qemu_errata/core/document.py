"""Typed reading of JSON documents: each problem names the input and the key.

Profiles and pool models share these readers so that every malformed file
gets the same kind of one-line error.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

from qemu_errata.errors import InputError, ProfileError

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any, NoReturn

REGISTER_MAX = (1 << 64) - 1
# Our documents are a few levels deep and hold small numbers; anything past
# these bounds is refused as bad input before it can exhaust the stack or the CPU.
JSON_MAX_DEPTH = 32
# Larger than any register, CPU number or frequency; also refuses 1e999 (infinity).
NUMBER_BOUND = 10**30
CPU_NUMBER_MAX = (1 << 16) - 1
# Messages quote keys and values from the input; this bounds how much.
MESSAGE_MAX_CHARACTERS = 400


class _JsonRefusedError(ValueError):
    """A decoding hook's refusal; parse_json turns it into one InputError line."""


def parse_json(text: str, origin: str) -> Any:
    """Decode one of our JSON documents strictly; InputError naming ``origin`` otherwise.

    Refused on top of JSON syntax: duplicate keys (readers would disagree on
    which wins), NaN and Infinity (not JSON), numbers past NUMBER_BOUND,
    nesting deeper than JSON_MAX_DEPTH,
    and strings with lone surrogates (they cannot be printed or written as UTF-8).
    """
    try:
        data = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
        )
    except RecursionError:
        raise InputError(f"{origin}: nested deeper than {JSON_MAX_DEPTH} levels") from None
    except _JsonRefusedError as refused:
        raise InputError(f"{origin}: {refused}") from None
    except json.JSONDecodeError as error:
        raise InputError(
            f"{origin}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except ValueError:  # Python's own bound on decimal digits (sys.get_int_max_str_digits)
        raise InputError(f"{origin}: a number past {NUMBER_BOUND:.0e}") from None
    _check_tree(data, origin)
    return data


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonRefusedError(f"duplicate key {key!r:.80}")
        result[key] = value
    return result


def _no_constant(name: str) -> NoReturn:
    raise _JsonRefusedError(f"{name} is not a JSON number")


def _check_tree(data: Any, origin: str) -> None:
    """Depth, number and string checks, without recursion (the input decides the depth)."""
    _check_scalar(data, origin)
    pending: list[tuple[Any, int]] = [(data, 1)] if isinstance(data, dict | list) else []
    while pending:
        container, depth = pending.pop()
        if depth > JSON_MAX_DEPTH:
            raise InputError(f"{origin}: nested deeper than {JSON_MAX_DEPTH} levels")
        if isinstance(container, dict):
            for key in container:
                _check_string(key, origin)
            container = container.values()
        for value in container:
            if isinstance(value, dict | list):
                pending.append((value, depth + 1))
            else:
                _check_scalar(value, origin)


def _check_scalar(value: Any, origin: str) -> None:
    if isinstance(value, str):
        _check_string(value, origin)
    elif isinstance(value, int | float) and not -NUMBER_BOUND < value < NUMBER_BOUND:
        raise InputError(f"{origin}: a number past {NUMBER_BOUND:.0e}")


def _check_string(value: str, origin: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{origin}: a string with a lone surrogate: {value!a:.60}") from None


def one_line(text: str, limit: int = MESSAGE_MAX_CHARACTERS) -> str:
    """``text`` as one line of at most about ``limit`` characters (control characters escaped)."""
    line = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    if len(line) <= limit:
        return line
    return f"{line[:limit]}... ({len(line) - limit} more characters)"


class DocumentReader:
    """Reads keys of one JSON object, raising ProfileError naming origin and key."""

    def __init__(
        self, data: object, origin: str, expected_format: str, keys: Collection[str]
    ) -> None:
        if not isinstance(data, dict):
            raise ProfileError(f"{origin}: not a JSON object")
        self.data: dict[str, Any] = data
        self.origin = origin
        found = data.get("format")
        if found != expected_format:
            raise self.fail("format", f"expected {expected_format!r}, found {found!r:.80}")
        self.check_keys(data, "", keys)

    def fail(self, key: str, problem: str) -> ProfileError:
        return ProfileError(one_line(f"{self.origin}: {key}: {problem}"))

    def check_keys(self, data: Mapping[str, Any], where: str, keys: Collection[str]) -> None:
        """Refuse keys this format does not define: a misspelt or newer key would be ignored."""
        unknown = [key for key in data if key not in keys]
        if unknown:
            name = f"{where}.{unknown[0]}" if where else unknown[0]
            known = ", ".join(sorted(keys))
            raise self.fail(name, f"unknown key (this version knows: {known})")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def string(self, key: str) -> str:
        """A non-empty one-line string (host names end up in messages and file names)."""
        value = self.data.get(key)
        if not isinstance(value, str) or not value or not value.isprintable():
            raise self.fail(key, "missing or not a non-empty string of printable characters")
        return value

    def optional_int(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= REGISTER_MAX:
            raise self.fail(key, f"{value!r:.40} is not a positive 64-bit integer or null")
        return value

    def registers(self, key: str, required: bool = False) -> dict[str, int]:
        """A name -> 64-bit value map written as hex strings."""
        value = self.data.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "missing or not an object of register name to hex value")
        return {name: parse_register(raw, f"{key}.{name}", self) for name, raw in value.items()}

    def optional_registers(self, key: str) -> dict[str, int] | None:
        """Like registers(), but null stays None (e.g. writable masks not known)."""
        if key not in self.data:
            raise self.fail(key, "missing (write null when unknown)")
        return None if self.data[key] is None else self.registers(key)

    def strings(self, key: str) -> tuple[str, ...]:
        """An optional list of strings (absent: empty)."""
        value = self.data.get(key, [])
        if not is_string_list(value) or not all(v.isprintable() for v in value):
            raise self.fail(key, "not a list of strings of printable characters")
        return tuple(value)

    def items(self, key: str) -> list[Mapping[str, Any]]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(key, "missing or not a list of objects")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "not an object")
        return value


def is_string_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def parse_register(raw: object, key: str, reader: DocumentReader) -> int:
    """A register value written as a hex string such as ``"0x414fd0c1"``."""
    if (
        not isinstance(raw, str)
        or raw[:2] not in ("0x", "0X")
        or not _HEX_DIGITS.issuperset(raw[2:])
        or len(raw) < 3
    ):
        raise reader.fail(key, f"{raw!r:.40} is not a hex string like '0x1f'")
    value = int(raw, 16) if len(raw) <= _HEX_MAX_CHARACTERS else -1
    if not 0 <= value <= REGISTER_MAX:
        raise reader.fail(key, f"{raw:.40} does not fit in 64 bits")
    return value


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_HEX_MAX_CHARACTERS = 40  # leading zeros allowed; longer is refused before int() sees it


def hex_registers(values: Mapping[str, int]) -> dict[str, str]:
    """The JSON form of a register map: hex strings, in the map's order."""
    return {name: f"{value:#x}" for name, value in values.items()}
