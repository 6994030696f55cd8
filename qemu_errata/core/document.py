"""Typed reading of JSON documents: each problem names the input and the key.

Profiles and pool models share these readers so that every malformed file
gets the same kind of one-line error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qemu_errata.errors import ProfileError

REGISTER_MAX = (1 << 64) - 1


class DocumentReader:
    """Reads keys of one JSON object, raising ProfileError naming origin and key."""

    def __init__(self, data: object, origin: str, expected_format: str) -> None:
        if not isinstance(data, dict):
            raise ProfileError(f"{origin}: not a JSON object")
        self.data: dict[str, Any] = data
        self.origin = origin
        found = data.get("format")
        if found != expected_format:
            raise ProfileError(f"{origin}: format: expected {expected_format!r}, found {found!r}")

    def fail(self, key: str, problem: str) -> ProfileError:
        return ProfileError(f"{self.origin}: {key}: {problem}")

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def string(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value:
            raise self.fail(key, "missing or not a non-empty string")
        return value

    def optional_int(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise self.fail(key, f"{value!r} is not a positive integer or null")
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
        if not is_string_list(value):
            raise self.fail(key, "not a list of strings")
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
    if not isinstance(raw, str) or not raw.lower().startswith("0x"):
        raise reader.fail(key, f"{raw!r} is not a hex string like '0x1f'")
    try:
        value = int(raw, 16)
    except ValueError:
        raise reader.fail(key, f"{raw!r} is not a hex string like '0x1f'") from None
    if not 0 <= value <= REGISTER_MAX:
        raise reader.fail(key, f"{raw} does not fit in 64 bits")
    return value


def hex_registers(values: Mapping[str, int]) -> dict[str, str]:
    """The JSON form of a register map: hex strings, in the map's order."""
    return {name: f"{value:#x}" for name, value in values.items()}
