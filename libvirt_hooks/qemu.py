"""libvirt's ``qemu`` hook: guard incoming migrations, restores and starts of pool VMs.

libvirt runs every hook for every lifecycle op of every VM and waits for it,
so this module, all that most runs load, imports only its constants: an op it does not
guard exits at once without reading stdin (libvirt ignores the EPIPE), and a
guarded op reads the domain XML and exits unless our namespace's bytes are in
it. Only a pool VM's decision loads ``libvirt_hooks.guard``.
"""

from __future__ import annotations

import sys

from libvirt_hooks.constants import GUARDED, MAX_XML_BYTES
from libvirt_hooks.constants import POOL_NAMESPACE_BYTES as POOL_NAMESPACE

_CHUNK = 1 << 16


def main(argv: list[str]) -> int:
    """``argv``: the script, then libvirt's ``<domain> <op> <subop> <extra>``; the exit status."""
    if len(argv) < 4 or (argv[2], argv[3]) not in GUARDED:
        return 0
    domain, what = argv[1], GUARDED[argv[2], argv[3]]
    try:
        xml = _read_pool_candidate()
    except OSError as error:  # cannot tell whether it is a pool VM: fail closed
        print(
            f"qemu-errata: refused the {what} of VM {domain!r}: "
            f"cannot read the domain XML on stdin: {error.strerror}",
            file=sys.stderr,
        )
        return 1
    if xml is None:
        return 0
    from libvirt_hooks.guard import guard  # noqa: PLC0415 (heavy imports for pool VMs only)

    return guard(domain, argv[2], what, xml)


def _read_pool_candidate() -> bytes | None:
    """The domain XML on stdin if it names our namespace, else None.

    Past MAX_XML_BYTES the rest is only scanned; a pool VM's XML then comes
    back truncated, and the guard refuses it as too large.
    """
    if sys.stdin is None:  # no stdin at all: no XML, so not a pool VM
        return None
    stream = sys.stdin.buffer
    kept = bytearray()
    while len(kept) <= MAX_XML_BYTES:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return bytes(kept) if POOL_NAMESPACE in kept else None
        kept += chunk
    if POOL_NAMESPACE in kept:
        return bytes(kept)
    tail = bytes(kept[-len(POOL_NAMESPACE) :])
    while chunk := stream.read(_CHUNK):
        if POOL_NAMESPACE in tail + chunk:
            return bytes(kept)
        tail = chunk[-len(POOL_NAMESPACE) :]
    return None
