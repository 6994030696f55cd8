"""libvirt's ``qemu`` hook: guard incoming migrations, restores and starts of pool VMs.

libvirt runs every hook for every lifecycle op of every VM and waits for it,
so this module, all that most runs load, imports only its constants: an op it
does not guard exits at once without reading stdin (libvirt ignores the EPIPE),
and a guarded op reads the domain XML and exits when it can prove that the
document carries no pool metadata of any version (``provably_plain``). Any
other document, pool VM or not, goes to ``libvirt_hooks.guard``, which parses
it as libvirt would. Reading stdin is bounded too (STDIN_SECONDS): a caller that
never closes it is refused, not waited for.
"""

from __future__ import annotations

import codecs
import errno
import os

from libvirt_hooks.constants import GUARDED, MAX_XML_BYTES, POOL_NAMESPACE_PREFIX_BYTES

TYPE_CHECKING = False  # typing and signal's enums cost start-up time on every hook run
if TYPE_CHECKING:
    import signal
else:
    import _signal as signal

_CHUNK = 1 << 16
STDIN_SECONDS = 10  # libvirt writes the XML at once: reading it never takes this long
_HEAD = 4096  # bytes in which a document's first markup (a BOM, a declaration) must start
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
    signal.signal(signal.SIGALRM, _stdin_timed_out)
    signal.alarm(STDIN_SECONDS)  # a writer that never closes stdin must not hold libvirt
    try:
        xml = _read_pool_candidate()
    except OSError as error:  # cannot tell whether it is a pool VM: fail closed
        from libvirt_hooks.guard import say  # noqa: PLC0415 (only when refusing)

        say(
            f"qemu-errata: refused the {what} of VM {domain!r}: "
            f"cannot read the domain XML on stdin: {error.strerror}"
        )
        return 1
    finally:
        signal.alarm(0)
    if xml is None:
        return 0
    from libvirt_hooks.guard import guard  # noqa: PLC0415 (heavy imports when it may be ours)

    return guard(domain, argv[2], what, xml)


def _stdin_timed_out(_number: int, _frame: object) -> None:
    raise TimeoutError(errno.ETIMEDOUT, f"it did not end within {STDIN_SECONDS} s")


def provably_plain(xml: bytes | bytearray) -> bool:
    """True only if no XML parser can read pool metadata (any version) in ``xml``.

    Such a document is UTF-8 (no BOM, no other declared encoding, so every
    ASCII character is its own byte), has no reference and no DOCTYPE (so
    every attribute value, namespace declarations included, is written out
    literally), and does not contain the namespace's prefix. Anything else
    may be ours and gets parsed: this only decides what need not be.
    """
    if any(marker in xml for marker in _SPELLINGS):
        return False
    return (xml.isascii() or _is_utf8(xml)) and _plain_start(xml)


def _plain_start(xml: bytes | bytearray) -> bool:
    """Whether the document starts as plain UTF-8 markup: no BOM, no other declared encoding."""
    head = xml[:_HEAD].lstrip(b" \t\r\n")  # a slice: no copy of a large document
    if not head:
        return len(xml) <= _HEAD  # no document at all; past _HEAD, parse it
    if not head.startswith(b"<"):
        return False  # a BOM, or anything a parser might decode otherwise
    if head.startswith(b"<?"):
        end = head.find(b"?>")
        if end < 0:
            return False  # a declaration longer than _HEAD: parse it
        declaration = b"".join(head[:end].lower().split())
        if b"encoding" in declaration and not (
            b'encoding="utf-8"' in declaration or b"encoding='utf-8'" in declaration
        ):
            return False
    return True


def _is_utf8(xml: bytes | bytearray) -> bool:
    """Whether ``xml`` is UTF-8, checked by chunks: a whole decode would cost up to 4x its size."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(xml), _CHUNK):
            decoder.decode(xml[start : start + _CHUNK], start + _CHUNK >= len(xml))
    except UnicodeDecodeError:
        return False
    return True


def _read_pool_candidate() -> bytearray | None:
    """The domain XML on stdin unless it is provably plain (then None).

    Past MAX_XML_BYTES the rest is only scanned, chunk by chunk, for what
    could spell our namespace; a document that may be ours then comes back
    longer than MAX_XML_BYTES but truncated, and the guard refuses it as too large.
    """
    kept = bytearray()
    while len(kept) <= MAX_XML_BYTES:
        chunk = _read_chunk()
        if chunk is None:
            return None if provably_plain(kept) else kept  # kept, not a copy: memory is bounded
        kept += chunk
    if not provably_plain(kept):
        return kept
    tail = bytes(kept[-_OVERLAP:])
    while (chunk := _read_chunk()) is not None:
        if not chunk.isascii() or any(marker in tail + chunk for marker in _SPELLINGS):
            return kept
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
