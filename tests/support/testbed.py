"""What the tests on the test bed share."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import libvirt

from qemu_errata.testbed.bed import Host


@contextlib.contextmanager
def guest_removed(hosts: Iterable[Host], name: str) -> Iterator[None]:
    """Destroy and undefine the domain ``name`` wherever it is, however the test ends."""
    try:
        yield
    finally:
        for host in hosts:
            with contextlib.suppress(libvirt.libvirtError):
                domain = host.connection.lookupByName(name)
                if domain.isActive():
                    domain.destroy()
                with contextlib.suppress(libvirt.libvirtError):
                    domain.undefine()
