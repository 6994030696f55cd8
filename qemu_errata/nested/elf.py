"""The shared libraries an ELF program needs (pure: bytes in, names out).

The nested host's QEMU layer holds QEMU and only the libraries it loads,
found by following each file's ``DT_NEEDED`` entries through the unpacked
packages (arm64 files, which this machine cannot run ``ldd`` on). Only
64-bit little-endian ELF is read: every arm64 Debian file is.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from qemu_errata.errors import ImageBuildError

_MAGIC = b"\x7fELF"
_CLASS_64 = 2
_LITTLE_ENDIAN = 1
_SECTION_DYNAMIC = 6
_TAG_NEEDED = 1
_TAG_NULL = 0
# Elf64_Ehdr: e_shoff at 0x28, e_shentsize/e_shnum at 0x3a/0x3c.
_HEADER = struct.Struct("<40xQ10xHH")
# Elf64_Shdr: sh_type, then sh_offset, sh_size, sh_link.
_SECTION = struct.Struct("<4xI16xQQI")
_DYNAMIC_ENTRY = struct.Struct("<qQ")


def needed_libraries(data: bytes, name: str) -> list[str]:
    """The ``DT_NEEDED`` names of the ELF file ``data`` (``name`` for messages), in order."""
    if data[:4] != _MAGIC or data[4] != _CLASS_64 or data[5] != _LITTLE_ENDIAN:
        raise ImageBuildError(f"{name}: not a 64-bit little-endian ELF file")
    try:
        table, entry_size, count = _HEADER.unpack_from(data)
        sections = [
            _SECTION.unpack_from(data, table + index * entry_size) for index in range(count)
        ]
        needed = []
        for kind, offset, size, link in sections:
            if kind != _SECTION_DYNAMIC:
                continue
            _, strings, _, _ = sections[link]
            for start in range(offset, offset + size, _DYNAMIC_ENTRY.size):
                tag, value = _DYNAMIC_ENTRY.unpack_from(data, start)
                if tag == _TAG_NULL:
                    break
                if tag == _TAG_NEEDED:
                    end = data.index(b"\0", strings + value)
                    needed.append(data[strings + value : end].decode())
        return needed
    except (struct.error, IndexError, ValueError, UnicodeDecodeError):
        raise ImageBuildError(f"{name}: damaged ELF file") from None


def library_closure(
    program: str, read: Callable[[str], bytes | None], directories: Sequence[str]
) -> list[str]:
    """Every file ``program`` loads: itself and its libraries, transitively, in order found.

    ``read`` returns a file's bytes by path (None where there is none); a
    library is looked for in ``directories`` in order, as the dynamic loader
    does. A library found nowhere is an error naming it and who needs it.
    """
    found = [program]
    seen = {program.rsplit("/", 1)[-1]}
    for path in found:
        data = read(path)
        assert data is not None, path
        for library in needed_libraries(data, path):
            if library in seen:
                continue
            seen.add(library)
            where = next((f"{d}/{library}" for d in directories if read(f"{d}/{library}")), None)
            if where is None:
                raise ImageBuildError(f"{path} needs {library}, which no package provides")
            found.append(where)
    return found
