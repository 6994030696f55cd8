"""The QEMU layer's pure parts: the libraries an ELF file needs, and apt's install lines.

The ELF reader is checked against this machine's own programs and readelf(1)
(the layer's arm64 files are read the same way: 64-bit little-endian ELF).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from qemu_errata.errors import ImageBuildError
from qemu_errata.nested.apt import pinned_spec
from qemu_errata.nested.elf import library_closure, needed_libraries

PROGRAM = "/bin/ls"
LIBRARIES = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu")


def read(path: str) -> bytes | None:
    file = Path(path)
    return file.read_bytes() if file.is_file() else None


@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs readelf (binutils)")
def test_needed_libraries_are_those_readelf_lists_in_order() -> None:
    listing = subprocess.run(
        ["readelf", "-d", PROGRAM], capture_output=True, text=True, check=True
    ).stdout
    needed = [line for line in listing.splitlines() if "(NEEDED)" in line]
    expected = [line.split("[")[1].rstrip("]") for line in needed]
    assert expected
    assert needed_libraries(Path(PROGRAM).read_bytes(), PROGRAM) == expected


def test_the_closure_follows_libraries_of_libraries_once_each() -> None:
    closure = library_closure(PROGRAM, read, LIBRARIES)
    names = [Path(path).name for path in closure]
    assert closure[0] == PROGRAM
    assert len(names) == len(set(names))
    assert {"libc.so.6", "libselinux.so.1"} <= set(names)
    # Needed by libselinux, not by ls itself.
    assert "libpcre2-8.so.0" not in needed_libraries(Path(PROGRAM).read_bytes(), PROGRAM)
    assert "libpcre2-8.so.0" in names


def test_a_library_no_package_provides_is_named_with_who_needs_it() -> None:
    def without_pcre(path: str) -> bytes | None:
        return None if "libpcre2" in path else read(path)

    with pytest.raises(ImageBuildError, match=r"libselinux\.so\.1 needs libpcre2-8\.so\.0"):
        library_closure(PROGRAM, without_pcre, LIBRARIES)


@pytest.mark.parametrize(
    "data", [b"#!/bin/sh\n", b"\x7fELF\x01\x01" + b"\0" * 58, b"\x7fELF\x02\x01"]
)
def test_what_is_not_a_whole_64_bit_elf_file_is_refused(data: bytes) -> None:
    with pytest.raises(ImageBuildError, match=r"^wrapper: "):
        needed_libraries(data, "wrapper")


def test_install_line_gives_the_pinned_package_version() -> None:
    line = (
        "'http://deb.debian.org/debian/pool/main/q/qemu/qemu-system-arm_1%3a11.1.3+ds-1_arm64.deb' "
        "qemu-system-arm_1%3a11.1.3+ds-1_arm64.deb 9368124 MD5Sum:" + "ab" * 16
    )
    assert pinned_spec(line) == "qemu-system-arm=1:11.1.3+ds-1"
    with pytest.raises(ImageBuildError, match="unexpected install line"):
        pinned_spec("'http://x' file.deb 1")
