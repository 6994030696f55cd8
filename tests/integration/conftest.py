"""Fixtures of the integration tests: one test-bed host per module."""

from __future__ import annotations

import pytest
from support.hosts import NEOVERSE_N1_MIDR

from qemu_errata.core.implementations import Implementation
from qemu_errata.core.profile import HostProfile
from qemu_errata.testbed.bed import Host, TestBed

# A host whose physical CPUs are two Neoverse-N1 r4p1 (its sysfs tree is all the hook reads).
N1_HOST = HostProfile(
    host="n1",
    implementations=(Implementation(int(NEOVERSE_N1_MIDR, 16), 0, None, (0, 1)),),
    id_registers={},
    writable_masks=None,
    timer_frequency_hz=None,
)


@pytest.fixture(scope="module")
def n1_host(module_testbed: TestBed) -> Host:
    """One Neoverse-N1 test-bed host for the module's tests."""
    (started,) = module_testbed.start_hosts([N1_HOST])
    return started
