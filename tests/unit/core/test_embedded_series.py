"""A pool of embedded kvm profiles meets a host of another kernel: the profiles of its own."""

from __future__ import annotations

from qemu_errata.core.embedded import profiles_for_series

POOL_6_12 = ("neoverse-n1-linux-6.12", "cortex-a76-linux-6.12")


def test_the_same_cpu_models_of_the_hosts_kernel() -> None:
    assert profiles_for_series(POOL_6_12, (7, 2)) == ["kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76"]


def test_nothing_when_the_kernel_is_the_pools_or_the_hosts_are_not_embedded() -> None:
    assert profiles_for_series(POOL_6_12, (6, 12)) == []
    assert profiles_for_series(("rack1-h1", "neoverse-n1-linux-6.12"), (7, 2)) == []
    assert profiles_for_series(POOL_6_12, (5, 10)) == []  # no embedded 5.10 profiles
    assert profiles_for_series(POOL_6_12, None) == []
    assert profiles_for_series((), (7, 2)) == []
