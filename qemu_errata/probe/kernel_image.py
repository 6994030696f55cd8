"""An arm64 Linux kernel Image, raw or gzip-compressed, and where it wants to be loaded.

The header (Documentation/arch/arm64/booting.rst): ``text_offset`` (u64 at
8) from a 2 MiB aligned base, ``image_size`` (u64 at 16: the memory the
kernel uses from its start, bss included; 0 in kernels before 3.17, which
guest-view does not boot), and the magic ``ARM\\x64`` at 56, all
little-endian. Debian ships /boot/vmlinuz-* gzip-compressed; boot loaders,
and guest-view, decompress it first. Other formats (EFI zboot, bzip2, ...)
are refused: the one line says what the file is not.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from qemu_errata.errors import InputError
from qemu_errata.files import read_bytes

HEADER = struct.Struct(
    "<IIQQQQQQ4sI"
)  # code0, code1, text_offset, image_size, flags, res2-4, magic, res5
MAGIC = b"ARM\x64"
GZIP_MAGIC = b"\x1f\x8b"
# Far larger than any arm64 Image (tens of MB): a bound on what a bad file makes us inflate.
MAX_IMAGE_BYTES = 512 << 20


@dataclass(frozen=True)
class KernelImage:
    """The raw Image and what its header says about loading it."""

    data: bytes
    text_offset: int
    image_size: int
    compressed: bool


def parse_image(data: bytes, origin: str) -> KernelImage:
    """The Image in ``data`` (gzip-compressed or raw); InputError naming ``origin`` otherwise."""
    compressed = data[:2] == GZIP_MAGIC
    if compressed:
        data = _gunzip(data, origin)
    if len(data) < HEADER.size:
        raise InputError(f"{origin}: not an arm64 kernel Image ({len(data)} bytes, no header)")
    _, _, text_offset, image_size, _, _, _, _, magic, _ = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise InputError(
            f"{origin}: not an arm64 kernel Image (no ARM\\x64 magic at byte 56"
            f"{' of the gzip-decompressed data' if compressed else ''})"
        )
    if image_size < len(data):
        raise InputError(
            f"{origin}: arm64 Image header gives image_size {image_size}, less than the "
            f"{len(data)} bytes of the file (a kernel older than 3.17?)"
        )
    return KernelImage(data, text_offset, image_size, compressed)


def _gunzip(data: bytes, origin: str) -> bytes:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(data, MAX_IMAGE_BYTES)
    except zlib.error as error:
        raise InputError(f"{origin}: gzip data that does not decompress: {error}") from None
    if decompressor.unconsumed_tail:
        raise InputError(f"{origin}: decompresses to more than {MAX_IMAGE_BYTES >> 20} MiB")
    return out


def read_image(path: Path) -> KernelImage:
    """The kernel Image in the file at ``path``."""
    return parse_image(read_bytes(path, MAX_IMAGE_BYTES), str(path))
