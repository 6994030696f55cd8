"""How much the installed libvirt hook costs libvirt, next to a bare ``python3 -I -c pass``.

libvirt waits for the hook on every lifecycle op of every VM. Budget:
ops and VMs the hook ignores at most 1.3x the bare interpreter, a pool decision
at most 2.5x; the host-profile check (which loads the register catalogue) has
no budget and is shown for information. Each case runs ``--runs`` times,
interleaved with the others so that machine load hits them alike; the medians,
p95 and the ratios of the medians to the bare interpreter are printed.

Usage: python bench/hook_startup.py [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from lxml import etree
from table import Command, Row, format_table, startup_rows

from qemu_errata.commands.hook import SCRIPT_NAME, install
from qemu_errata.core.implementations import (
    Implementation,
    TargetImplementation,
    TargetImplementations,
)
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.profile import HostProfile
from qemu_errata.files import write_json
from qemu_errata.testbed.bed import write_sysfs_tree
from qemu_errata.vmm.pool_element import pool_element

N1 = 0x414FD0C1
A64FX = 0x461F0010
ISAR0 = "ID_AA64ISAR0_EL1"
N1_ISAR0 = 0x100010211120


def domain_xml(targets: list[int] | None) -> bytes:
    """A libvirt-sized domain XML, with pool metadata for ``targets`` (None: not a pool VM)."""
    domain = etree.Element("domain", type="qemu")
    etree.SubElement(domain, "name").text = "bench-vm"
    etree.SubElement(domain, "vcpu", placement="static").text = "4"
    devices = etree.SubElement(domain, "devices")
    for index in range(20):  # a few KiB of devices, like a real domain
        disk = etree.SubElement(devices, "disk", type="file", device="disk")
        etree.SubElement(disk, "source", file=f"/var/lib/libvirt/images/disk{index}.qcow2")
        etree.SubElement(disk, "target", dev=f"vd{chr(97 + index)}", bus="virtio")
    if targets is not None:
        model = PoolModel(
            id_registers={ISAR0: N1_ISAR0},
            target_implementations=TargetImplementations(
                TargetImplementation(midr, None, None) for midr in targets
            ),
            timer_frequency_hz=25_000_000,
        )
        etree.SubElement(domain, "metadata").append(pool_element(model))
    return etree.tostring(domain)


def make_host(home: Path, midr: int, profile: bool) -> dict[str, str]:
    """A HOME with hook.toml, a 4-CPU sysfs tree and (optionally) a cached host profile."""
    host = HostProfile(
        host="bench",
        implementations=(Implementation(midr, 0, None, (0, 1, 2, 3)),),
        id_registers={ISAR0: N1_ISAR0},
        writable_masks=None,
        timer_frequency_hz=25_000_000,
    )
    write_sysfs_tree(host, home / "sys")
    settings = {
        "sysfs_root": str(home / "sys"),
        "log": str(home / "hook.log"),
        "timer_frequency_hz": 25_000_000,
    }
    if profile:
        path = home / "host-profile.json"
        write_json(path, host.to_json())
        settings["host_profile"] = str(path)
    config = home / ".config/qemu-errata/hook.toml"
    config.parent.mkdir(parents=True)
    config.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items()))
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "LC_ALL": "C"}


# Budgets, by case: at most this many times the bare interpreter.
BUDGETS = {
    "ignored op (started begin)": "<= 1.3x",
    "non-pool VM (migrate begin)": "<= 1.3x",
    "pool decision: allowed": "<= 2.5x",
    "pool decision: refused": "<= 2.5x",
}


def measure(runs: int) -> list[Row]:
    """Each case ``runs`` times, interleaved; ratios to the bare interpreter."""
    with tempfile.TemporaryDirectory(prefix="hook-bench.") as temporary:
        base = Path(temporary)
        install(base / "hooks")
        hook = str(base / "hooks" / SCRIPT_NAME)
        n1 = make_host(base / "n1", N1, profile=False)
        a64fx = make_host(base / "a64fx", A64FX, profile=False)
        n1_profile = make_host(base / "n1-profile", N1, profile=True)
        pool, plain = domain_xml([N1]), domain_xml(None)
        migrate_in = [hook, "bench-vm", "migrate", "begin", "-"]
        commands = {
            "ignored op (started begin)": Command(
                [hook, "bench-vm", "started", "begin", "-"], pool, n1
            ),
            "non-pool VM (migrate begin)": Command(migrate_in, plain, n1),
            "pool decision: allowed": Command(migrate_in, pool, n1),
            "pool decision: refused": Command(migrate_in, pool, a64fx, status=1),
            "host-profile check (no budget)": Command(migrate_in, pool, n1_profile),
        }
        return startup_rows("hook", commands, runs, BUDGETS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    runs = parser.parse_args().runs
    print(f"{runs} runs of each case, interleaved")
    print(format_table(measure(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
