"""Faults on the real test bed: what a broken host does to a pool VM's migration.

Hosts A (Neoverse-N1) and B (Cortex-A76) are in the VM's pool, C (A64FX) is
not; each runs the hook as `qemu-errata hook install` writes it, and a
`zz-hold` test hook that can hold an incoming migration (libvirt runs the
hooks of qemu.d in name order, so ours has decided by then). The faults: the
destination daemon killed (SIGKILL) during an incoming migration; a busy
guest refused 20 times in a row; the destination's sysfs made unreadable
between migrations and while the hook reads it; the destination's hook
configuration corrupted between two migrations.

Each test checks that a clear error reaches the libvirt client, that the VM
still runs on its source with the same definition (its migratable XML), and
that every test-bed user runs the same programs as before the fault (for a
killed daemon: once it is restarted, as systemd would).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import libvirt
import pytest
from lxml import etree

from qemu_errata.commands.hook import SCRIPT_NAME, install
from qemu_errata.core.implementations import (
    TargetImplementation,
    TargetImplementations,
)
from qemu_errata.core.pool import PoolModel
from qemu_errata.testbed.bed import (
    BUSY_FIRMWARE,
    IDLE_FIRMWARE,
    Host,
    TestBed,
    cpu_host,
    free_port,
    guest_xml,
    migrate,
    write_sysfs_tree,
)
from qemu_errata.testbed.users import user_processes
from qemu_errata.vmm.pool_element import pool_element

N1 = 0x414FD0C1
A76 = 0x414FD0B1
A64FX = 0x461F0010
POOL = PoolModel(
    id_registers={},
    target_implementations=TargetImplementations(
        TargetImplementation(midr, 0, None) for midr in (N1, A76)
    ),
)

# Holds `migrate begin` while $HOME/hold exists, until the daemon that ran it
# dies (its parent changes) or 20 s pass; it writes its pid to $HOME/holding.
HOLD_HOOK = """#!/bin/sh
[ "$2 $3" = "migrate begin" ] && [ -e "$HOME/hold" ] || exit 0
parent=$PPID
echo $$ > "$HOME/holding"
for _ in $(seq 1000); do
    [ "$(cut -d' ' -f4 /proc/$$/stat)" = "$parent" ] || exit 0
    sleep 0.02
done
"""
HOLD_FLAG = "hold"
HOLDING = "holding"

# What libvirt's RPC client says when the daemon at the other end is gone.
CONNECTION_LOST = re.compile(
    r"End of file while reading data|Cannot write data|Cannot recv data|client socket is closed"
)
# libvirt starts virtlogd on demand and it exits when idle: not ours to count.
UNCOUNTED_PROGRAMS = {"virtlogd"}
SETTLE_S = 15.0
# A migration that has not ended by then hangs (libvirt waits for hooks forever).
MIGRATION_TIMEOUT_S = 60.0
# With BUSY_FIRMWARE's 4 MiB, a copy at 2 MiB/s lasts about 2 s: time to kill.
SLOW_COPY_MIB_S = 2

# The test bed creates system users.
pytestmark = pytest.mark.root

T = TypeVar("T")


@pytest.fixture(scope="module")
def hosts(module_testbed: TestBed, tmp_path_factory: pytest.TempPathFactory) -> list[Host]:
    hooks_dir = tmp_path_factory.mktemp("hooks")
    install(hooks_dir)
    hold = hooks_dir / "zz-hold"
    hold.write_text(HOLD_HOOK)
    hold.chmod(0o755)
    module_testbed.install_hook(hooks_dir / SCRIPT_NAME)
    module_testbed.install_hook(hold)
    return module_testbed.start_hosts([cpu_host("a", N1), cpu_host("b", A76), cpu_host("c", A64FX)])


@pytest.fixture(autouse=True)
def intact(hosts: list[Host]) -> Iterator[None]:
    """Every host as new for each test: daemon up, no guest, its own config and sysfs."""
    for host in hosts:
        host.write_hook_config(hook_config(host))
    yield
    for host in hosts:
        try:
            domains = host.connection.listAllDomains(0)
        except libvirt.libvirtError:  # a test killed the daemon and failed before restarting it
            host.restart()
            domains = host.connection.listAllDomains(0)
        for domain in domains:
            with contextlib.suppress(libvirt.libvirtError):
                domain.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                domain.undefine()
        for name in (HOLD_FLAG, HOLDING):
            (host.home / name).unlink(missing_ok=True)
        rebuild_sysfs(host)


def hook_config(host: Host, **extra: str | int) -> dict[str, str | int]:
    return {"log": str(host.home / "hook.log"), **extra}


def rebuild_sysfs(host: Host) -> None:
    shutil.rmtree(host.sysfs_root)
    write_sysfs_tree(host.profile, host.sysfs_root)
    for path in (host.sysfs_root, *host.sysfs_root.rglob("*")):
        os.chown(path, host.uid, host.gid)


def register_file(host: Host, cpu: int) -> Path:
    """The MIDR_EL1 file of ``cpu`` in the host's sysfs."""
    return host.sysfs_root / f"devices/system/cpu/cpu{cpu}/regs/identification/midr_el1"


def pool_guest(name: str, firmware: Path = IDLE_FIRMWARE) -> etree._Element:
    return guest_xml(name, "cortex-a76", metadata=[pool_element(POOL)], firmware=firmware)


def migratable_xml(domain: Any) -> str:
    description: str = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
    return description


def programs(hosts: list[Host]) -> dict[str, Counter[str]]:
    """The programs each test-bed user runs, by name (libvirtd, qemu-system-aarch64, hooks)."""
    found: dict[str, Counter[str]] = {}
    for host in hosts:
        names: Counter[str] = Counter()
        for pid in user_processes(host.uid):
            with contextlib.suppress(OSError):  # it ended meanwhile
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                name = Path(os.fsdecode(command[0])).name
                if name not in UNCOUNTED_PROGRAMS:
                    names[name] += 1
        found[host.user] = names
    return found


def settled(hosts: list[Host], expected: dict[str, Counter[str]]) -> dict[str, Counter[str]]:
    """The programs of the users once they are ``expected`` (or SETTLE_S has passed)."""
    deadline = time.monotonic() + SETTLE_S
    while (found := programs(hosts)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def wait_for(probe: Callable[[], T], migration: Future[Any], what: str) -> T:
    """Poll ``probe`` while the migration runs, until it is true; fail if the migration ends."""
    deadline = time.monotonic() + SETTLE_S
    while not (found := probe()):
        if migration.done():
            pytest.fail(f"the migration ended before {what}: {migration.exception()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {SETTLE_S} s")
        time.sleep(0.01)
    return found


def assert_unchanged_on_source(domain: Any, source: Host, before_xml: str) -> None:
    """The VM runs on ``source`` with the definition it had."""
    assert domain.name() in source.active_guests()
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert migratable_xml(domain) == before_xml


def assert_refusal(message: str, vm: str, *reasons: str) -> None:
    """The hook's one refusal line for ``vm``, giving ``reasons``, in libvirt's error."""
    assert "Hook script execution failed" in message
    assert f"qemu-errata: refused the incoming migration of VM {vm!r}: " in message
    for reason in reasons:
        assert reason in message
    assert "internal error in the hook" not in message
    assert "Traceback" not in message
    assert "\n" not in message.strip()


def in_background(call: Callable[..., T], *args: Any) -> Future[T]:
    """Run ``call`` in a daemon thread, so that a hung migration fails a test, not the run."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(call(*args))
        except BaseException as error:  # handed to the test through the future
            future.set_exception(error)

    threading.Thread(target=run, daemon=True).start()
    return future


def refused(domain: Any, destination: Host) -> str:
    """libvirt's error for a migration that must fail."""
    with pytest.raises(libvirt.libvirtError) as error:
        in_background(migrate, domain, destination).result(timeout=MIGRATION_TIMEOUT_S)
    return str(error.value)


# The destination daemon killed (SIGKILL) during an incoming migration.


def slow_migration(domain: Any, destination: Host) -> Any:
    params = {
        libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://127.0.0.1:{free_port()}",
        libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: SLOW_COPY_MIB_S,
    }
    return domain.migrate3(destination.connection, params, libvirt.VIR_MIGRATE_LIVE)


def copying(domain: Any) -> bool:
    with contextlib.suppress(libvirt.libvirtError):
        return bool(domain.jobStats().get("memory_processed", 0) > 0)
    return False


@pytest.mark.parametrize("phase", ["hooks", "memory copy"])
def test_destination_daemon_killed_during_an_incoming_migration(
    hosts: list[Host], phase: str
) -> None:
    a, b, _ = hosts
    domain = a.start_guest(pool_guest("vm-kill", BUSY_FIRMWARE))
    before_xml, before = migratable_xml(domain), programs(hosts)
    if phase == "hooks":
        (b.home / HOLD_FLAG).touch()
    migration = in_background(slow_migration, domain, b)
    if phase == "hooks":
        wait_for((b.home / HOLDING).exists, migration, "hold hook on B")
        (b.home / HOLD_FLAG).unlink()  # hold this migration only
    else:
        wait_for(lambda: copying(domain), migration, "memory copied to B")
    os.kill(b.daemon_pid, signal.SIGKILL)
    with pytest.raises(libvirt.libvirtError) as lost:
        migration.result(timeout=MIGRATION_TIMEOUT_S)
    assert lost.value.get_error_domain() == libvirt.VIR_FROM_RPC
    assert CONNECTION_LOST.search(str(lost.value)), str(lost.value)
    assert_unchanged_on_source(domain, a, before_xml)
    b.restart()
    assert settled(hosts, before) == before  # the incoming QEMU and the hold hook are gone
    assert b.active_guests() == set()
    cpu_time = domain.info()[4]
    time.sleep(0.2)
    assert domain.info()[4] > cpu_time  # still computing, never left paused
    moved = migrate(domain, b)  # no migration job left behind on A
    assert moved.state()[0] == libvirt.VIR_DOMAIN_RUNNING


# A busy guest refused again and again.


def test_busy_guest_is_refused_twenty_times_in_a_row(hosts: list[Host]) -> None:
    a, b, c = hosts
    domain = a.start_guest(pool_guest("vm-busy", BUSY_FIRMWARE))
    before_xml, before = migratable_xml(domain), programs(hosts)
    cpu_time = domain.info()[4]
    started = time.monotonic()
    for attempt in range(20):
        message = refused(domain, c)
        assert_refusal(message, "vm-busy", "Fujitsu A64FX r1p0", "Arm Cortex-A76 r4p1")
        assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING, f"after refusal {attempt + 1}"
    print(f"20 refusals took {time.monotonic() - started:.1f} s")
    assert domain.info()[4] > cpu_time
    assert_unchanged_on_source(domain, a, before_xml)
    assert programs(hosts) == before
    log = (c.home / "hook.log").read_text().splitlines()
    assert sum("domain='vm-busy'" in line and "outcome=refused" in line for line in log) == 20
    assert migrate(domain, b).state()[0] == libvirt.VIR_DOMAIN_RUNNING


# The destination's sysfs made unreadable.


def unreadable_register(host: Host) -> str:
    register_file(host, 1).chmod(0)
    return f"cannot read the identity of CPU 1: {register_file(host, 1)}: Permission denied"


def offline_cpu(host: Host) -> str:
    shutil.rmtree(register_file(host, 1).parent.parent)  # an offline CPU has no regs/
    return f"cannot read the identity of CPU 1: {register_file(host, 1)}: No such file"


def unlistable_cpus(host: Host) -> str:
    cpus = host.sysfs_root / "devices/system/cpu"
    cpus.chmod(0)
    return f"{cpus}: cannot list CPUs: Permission denied"


@pytest.mark.parametrize("fault", [unreadable_register, offline_cpu, unlistable_cpus])
def test_sysfs_made_unreadable_between_migrations(
    hosts: list[Host], fault: Callable[[Host], str]
) -> None:
    a, b, _ = hosts
    domain = migrate(a.start_guest(pool_guest("vm-sysfs")), b)
    before_xml, before = migratable_xml(domain), programs(hosts)
    reason = fault(a)
    message = refused(domain, a)
    assert_refusal(message, "vm-sysfs", reason, str(a.hook_config_path))
    assert_unchanged_on_source(domain, b, before_xml)
    assert programs(hosts) == before
    rebuild_sysfs(a)
    assert migrate(domain, a).state()[0] == libvirt.VIR_DOMAIN_RUNNING


def fifo_register(host: Host) -> Path:
    """CPU 0's MIDR file as a FIFO: the hook's read of it blocks until we write."""
    path = register_file(host, 0)
    path.unlink()
    os.mkfifo(path, 0o600)
    os.chown(path, host.uid, host.gid)
    return path


def test_a_register_file_that_is_no_file_is_refused_at_once(hosts: list[Host]) -> None:
    # A FIFO in place of CPU 0's MIDR: a reader would wait for ever, so the hook reads
    # regular files only and refuses at once, naming the file (it no longer waits).
    a, b, _ = hosts
    b.write_hook_config(hook_config(b, timeout_seconds=30))
    domain = a.start_guest(pool_guest("vm-fifo"))
    before_xml, before = migratable_xml(domain), programs(hosts)
    fifo = fifo_register(b)
    started = time.monotonic()
    message = refused(domain, b)
    assert time.monotonic() - started < 10
    assert_refusal(message, "vm-fifo", f"{fifo}: not a regular file", str(b.hook_config_path))
    assert_unchanged_on_source(domain, a, before_xml)
    assert programs(hosts) == before
    rebuild_sysfs(b)
    assert migrate(domain, b).state()[0] == libvirt.VIR_DOMAIN_RUNNING


# The destination's hook configuration corrupted between two migrations.


def truncated(path: Path) -> str:
    text = path.read_bytes()
    path.write_bytes(text[: text.index(b'"') + 5])  # a copy cut short in its first string
    return "not valid TOML"


def not_utf8(path: Path) -> str:
    path.write_bytes(b"\xff\xfe" + path.read_bytes())
    return "not UTF-8 text"


def misspelt_key(path: Path) -> str:
    path.write_bytes(path.read_bytes() + b'start_polcy = "warn"\n')
    return "unknown key 'start_polcy'"  # the hook names a key that looks like one


def zero_timeout(path: Path) -> str:
    path.write_bytes(path.read_bytes() + b"timeout_seconds = 0\n")
    return "timeout_seconds must be a whole number from 1 to 3600"


def huge_timeout(path: Path) -> str:
    path.write_bytes(path.read_bytes() + b"timeout_seconds = 99999999999\n")
    return "timeout_seconds"


def unreadable(path: Path) -> str:
    path.chmod(0)
    return "cannot read: Permission denied"


@pytest.mark.parametrize(
    "corrupt",
    [
        truncated,
        not_utf8,
        misspelt_key,
        zero_timeout,
        huge_timeout,
        unreadable,
    ],
    ids=lambda corrupt: corrupt.__name__,
)
def test_configuration_corrupted_between_two_migrations(
    hosts: list[Host], corrupt: Callable[[Path], str]
) -> None:
    a, b, _ = hosts
    domain = migrate(a.start_guest(pool_guest("vm-config")), b)
    before_xml, before = migratable_xml(domain), programs(hosts)
    reason = corrupt(a.hook_config_path)
    message = refused(domain, a)
    assert_refusal(message, "vm-config", f"{a.hook_config_path}: ", reason)
    assert_unchanged_on_source(domain, b, before_xml)
    assert programs(hosts) == before
    a.write_hook_config(hook_config(a))
    assert migrate(domain, a).state()[0] == libvirt.VIR_DOMAIN_RUNNING
