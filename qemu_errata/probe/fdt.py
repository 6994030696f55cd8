"""A flattened device tree (DTB) writer: the few nodes guest-view's VM describes (no I/O).

Writes format version 17 (the Devicetree Specification, chapter 5): a header,
an empty memory reservation block, the structure block (nodes and
properties as tokens) and the strings block (property names, each once).
A small writer of our own: the nested host has Python's standard library
only, and the tree guest-view gives a kernel has a dozen nodes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

MAGIC = 0xD00DFEED
VERSION = 17
LAST_COMPATIBLE_VERSION = 16
HEADER = struct.Struct(">10I")  # magic ... size_dt_struct
RESERVATION_ENTRY = struct.Struct(">QQ")
BEGIN_NODE, END_NODE, PROP, END = 1, 2, 3, 9

PropertyValue = bytes


def cells(*values: int) -> PropertyValue:
    """Big-endian 32-bit cells (``<1 2 3>``)."""
    return b"".join(struct.pack(">I", value) for value in values)


def string(text: str) -> PropertyValue:
    """A NUL-terminated string."""
    return text.encode("ascii") + b"\0"


def strings(texts: Sequence[str]) -> PropertyValue:
    """A string list (``"a", "b"``)."""
    return b"".join(string(text) for text in texts)


def address_cells(*values: int) -> PropertyValue:
    """64-bit numbers as two cells each (``#address-cells = <2>``, ``#size-cells = <2>``)."""
    return cells(*(half for value in values for half in (value >> 32, value & 0xFFFFFFFF)))


@dataclass
class Node:
    """A device tree node: its name (``memory@40000000``), properties in order, children."""

    name: str
    properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    children: Sequence[Node] = ()


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


class _Strings:
    """The strings block: each property name once, by offset."""

    def __init__(self) -> None:
        self.block = bytearray()
        self._offsets: dict[str, int] = {}

    def offset(self, name: str) -> int:
        if name not in self._offsets:
            self._offsets[name] = len(self.block)
            self.block += string(name)
        return self._offsets[name]


def _structure(node: Node, names: _Strings) -> Iterable[bytes]:
    yield struct.pack(">I", BEGIN_NODE) + _padded(string(node.name))
    for name, value in node.properties.items():
        yield struct.pack(">III", PROP, len(value), names.offset(name)) + _padded(value)
    for child in node.children:
        yield from _structure(child, names)
    yield struct.pack(">I", END_NODE)


def write_dtb(root: Node, boot_cpu: int = 0) -> bytes:
    """The DTB of the tree under ``root`` (whose name must be empty)."""
    if root.name:
        raise ValueError(f"the root node has no name, not {root.name!r}")
    names = _Strings()
    structure = b"".join(_structure(root, names)) + struct.pack(">I", END)
    reservations = RESERVATION_ENTRY.pack(0, 0)  # the terminating entry: none reserved
    structure_offset = HEADER.size + len(reservations)
    strings_offset = structure_offset + len(structure)
    total = strings_offset + len(names.block)
    header = HEADER.pack(
        MAGIC,
        total,
        structure_offset,
        strings_offset,
        HEADER.size,
        VERSION,
        LAST_COMPATIBLE_VERSION,
        boot_cpu,
        len(names.block),
        len(structure),
    )
    return header + reservations + structure + bytes(names.block)
