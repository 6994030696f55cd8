"""Two nested arm64 KVM hosts at once (the ``nested_fleet`` fixture): each runs its own
Debian kernel with /dev/kvm, and their private link carries bytes between them.

One boot of two hosts, about 30 s here once the images are cached. The live
migrations themselves (about 2.5 minutes each on this 2-core machine) are in
scripts/migration-matrix and bench/nested_migration.py.
"""

from __future__ import annotations

import hashlib

from qemu_errata.nested.pytest_plugin import FleetFactory


def test_two_hosts_of_two_kernels_share_a_private_link(nested_fleet: FleetFactory) -> None:
    old, new = nested_fleet("neoverse-n1:6.12", "cortex-a76:7.2")
    assert old.shell("uname -r").stdout.startswith(b"6.12.")
    assert new.shell("uname -r").stdout.startswith(b"7.2.")
    for host in (old, new):
        # The TCG CPU at EL2: KVM runs inside; the hostname names the model and the series.
        assert host.shell("test -c /dev/kvm && hostname").stdout.decode().strip() == host.name
    assert new.shell("cat /sys/devices/system/cpu/cpu0/regs/identification/midr_el1").stdout == (
        b"0x00000000414fd0b1\n"
    )
    data = bytes(range(256)) * 4096  # 1 MiB
    new.write_file("/tmp/data", data)
    digest = hashlib.sha256(data).hexdigest()
    reader = old.spawn(
        ["/bin/sh", "-c", f"head -c {len(data)} {old.link_to(new)} | sha256sum"], "/tmp/got"
    )
    assert new.shell(f"cat /tmp/data > {new.link_to(old)}").status == 0
    old.shell(
        f"while kill -0 {reader} 2>/dev/null && ! test -s /tmp/got; do sleep 0.2; done", timeout=60
    )
    assert old.read_file("/tmp/got").decode().split()[0] == digest
