"""pytest fixtures for the qemu-errata test bed (entry point ``pytest11``).

Installing qemu-errata makes these fixtures available to every pytest suite
run with that Python; tests that use them must run as root (see
``qemu_errata.testbed.bed``):

- ``testbed``: a TestBed for one test, torn down after it;
- ``module_testbed``: one TestBed shared by the tests of a module (start the
  hosts once, in a module-scoped fixture of your own).

Both tear down also when a test fails or the run is interrupted (Ctrl-C or
SIGTERM). The test bed is imported only when a fixture is used, so suites
that never use it pay nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from qemu_errata.testbed.bed import TestBed


def _open_testbed() -> Iterator[TestBed]:
    from qemu_errata.testbed.bed import TestBed  # noqa: PLC0415 - keep pytest start-up light

    with TestBed() as bed:
        yield bed


@pytest.fixture
def testbed() -> Iterator[TestBed]:
    """A test bed without hosts yet: ``testbed.start_hosts([...])``."""
    yield from _open_testbed()


@pytest.fixture(scope="module")
def module_testbed() -> Iterator[TestBed]:
    """A test bed shared by the tests of one module."""
    yield from _open_testbed()
