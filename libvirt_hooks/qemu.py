"""libvirt's ``qemu`` hook: guard incoming migrations, restores and starts of pool VMs.

libvirt runs every hook for every lifecycle op of every VM and waits for it,
so this module, all that most runs load, imports only its constants: an op it
does not guard exits at once without reading stdin (libvirt ignores the EPIPE),
and a guarded op reads the domain XML and exits when it can prove that the
document carries no pool metadata of any version (``provably_plain``). Any
other document, pool VM or not, goes to ``libvirt_hooks.guard``, which parses
it as libvirt would.
"""

from __future__ import annotations

import errno
import os

from libvirt_hooks.constants import GUARDED, MAX_XML_BYTES, POOL_NAMESPACE_PREFIX_BYTES

_CHUNK = 1 << 16
_STDIN = 0
# Bytes that could make a parser see a namespace not written out literally:
# references (&#58; &x;), a DOCTYPE (entities, default attributes), NUL (UTF-16/32).
_SPELLINGS = (POOL_NAMESPACE_PREFIX_BYTES, b"&", b"<!", b"\0")
_OVERLAP = max(len(marker) for marker in _SPELLINGS) - 1


def main(argv: list[str]) -> int:
    """``argv``: the script, then libvirt's ``<domain> <op> <subop> <extra>``; the exit status."""
    if len(argv) < 4 or (argv[2], argv[3]) not in GUARDED:
        return 0
    domain, what = argv[1], GUARDED[argv[2], argv[3]]
    try:
        xml = _read_pool_candidate()
    except OSError as error:  # cannot tell whether it is a pool VM: fail closed
        from libvirt_hooks.guard import say  # noqa: PLC0415 (only when refusing)

        say(
            f"qemu-errata: refused the {what} of VM {domain!r}: "
            f"cannot read the domain XML on stdin: {error.strerror}"
        )
        return 1
    if xml is None:
        return 0
    from libvirt_hooks.guard import guard  # noqa: PLC0415 (heavy imports when it may be ours)

    return guard(domain, argv[2], what, xml)


def provably_plain(xml: bytes) -> bool:
    """True only if no XML parser can read pool metadata (any version) in ``xml``.

    Such a document is UTF-8 (no BOM, no other declared encoding, so every
    ASCII character is its own byte), has no reference and no DOCTYPE (so
    every attribute value, namespace declarations included, is written out
    literally), and does not contain the namespace's prefix. Anything else
    may be ours and gets parsed: this only decides what need not be.
    """
    if any(marker in xml for marker in _SPELLINGS):
        return False
    if not xml.isascii():
        try:
            xml.decode("utf-8")
        except UnicodeDecodeError:
            return False
    head = xml.lstrip(b" \t\r\n")
    if not head:
        return True  # no document at all
    if not head.startswith(b"<"):
        return False  # a BOM, or anything a parser might decode otherwise
    if head.startswith(b"<?"):
        declaration = b"".join(head[: head.find(b"?>")].lower().split())
        if b"encoding" in declaration and not (
            b'encoding="utf-8"' in declaration or b"encoding='utf-8'" in declaration
        ):
            return False
    return True


def _read_pool_candidate() -> bytes | None:
    """The domain XML on stdin unless it is provably plain (then None).

    Past MAX_XML_BYTES the rest is only scanned, chunk by chunk, for what
    could spell our namespace; a document that may be ours then comes back
    longer than MAX_XML_BYTES but truncated, and the guard refuses it as too large.
    """
    kept = bytearray()
    while len(kept) <= MAX_XML_BYTES:
        chunk = _read_chunk()
        if chunk is None:
            return None if provably_plain(bytes(kept)) else bytes(kept)
        kept += chunk
    if not provably_plain(bytes(kept)):
        return bytes(kept)
    tail = bytes(kept[-_OVERLAP:])
    while (chunk := _read_chunk()) is not None:
        if not chunk.isascii() or any(marker in tail + chunk for marker in _SPELLINGS):
            return bytes(kept)
        tail = chunk[-_OVERLAP:]
    return None


def _read_chunk() -> bytes | None:
    """The next bytes on stdin; None at its end (or when there is no stdin at all).

    A non-blocking stdin with nothing in it yet is not its end: wait for data.
    """
    while True:
        try:
            return os.read(_STDIN, _CHUNK) or None
        except BlockingIOError:
            import select  # noqa: PLC0415 (only for a non-blocking stdin)

            select.select([_STDIN], [], [])
        except OSError as error:
            if error.errno == errno.EBADF:  # libvirt gave no stdin, so no XML
                return None
            raise
