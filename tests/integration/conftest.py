"""Fixtures of the integration tests: one test-bed host per module."""

from __future__ import annotations

import pytest
from support.hosts import NEOVERSE_N1_MIDR

from qemu_errata.testbed.bed import Host, TestBed, cpu_host

# A host whose physical CPUs are two Neoverse-N1 r4p1 (its sysfs tree is all the hook reads).
N1_HOST = cpu_host("n1", int(NEOVERSE_N1_MIDR, 16))


@pytest.fixture(scope="module")
def n1_host(module_testbed: TestBed) -> Host:
    """One Neoverse-N1 test-bed host for the module's tests."""
    (started,) = module_testbed.start_hosts([N1_HOST])
    return started
