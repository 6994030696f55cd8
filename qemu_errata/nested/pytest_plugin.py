"""pytest fixture ``nested_fleet``: nested arm64 KVM hosts for orchestration tests.

Entry point ``pytest11`` (installed with qemu-errata). The fixture is a
function: call it with ``CPU:KERNEL`` specs and it boots them at once
(:mod:`qemu_errata.nested.fleet`) and returns the hosts, in order::

    def test_probe_on_two_kernels(nested_fleet):
        old, new = nested_fleet("neoverse-n1:6.12", "neoverse-n1:7.2")
        assert old.shell("uname -r").stdout.startswith(b"6.12")
        assert new.qemu_errata("probe").status == 0
        assert new.link_to(old).startswith("/dev/vport")  # old's address, seen from new

Every host is stopped when the test ends; the QEMUs die with the test process
and the fleet's directory is removed even when pytest is killed
(:mod:`qemu_errata.processes`). The fleet is imported only when a test uses
the fixture, so suites that never use it pay nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from qemu_errata.nested.fleet import FleetHost

FleetFactory = Callable[..., "list[FleetHost]"]


@pytest.fixture
def nested_fleet() -> Iterator[FleetFactory]:
    """Boot hosts by ``CPU:KERNEL``: ``nested_fleet("neoverse-n1:6.12", "cortex-a76:7.2")``."""
    from qemu_errata.nested.fleet import HostSpec, fleet  # noqa: PLC0415 - light start-up

    with contextlib.ExitStack() as stack:

        def boot(*specs: str) -> list[FleetHost]:
            hosts = [HostSpec.parse(spec, "nested_fleet") for spec in specs]
            return stack.enter_context(fleet(hosts))

        yield boot
