"""The test bed: simulated hosts on real libvirt session daemons and QEMU.

One module-wide test bed of three hosts serves the migration, save/restore
and hook tests; the teardown tests make their own test beds (in this
process, in a script killed by a signal, in a pytest run that fails or is
interrupted) and check that nothing of them is left on the machine.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from support.cli import QEMU_ERRATA
from support.hosts import CORTEX_A57_MIDR, CORTEX_A76_MIDR, NEOVERSE_N1_MIDR, host_profile

from libvirt_hooks.config import DEFAULT_TIMEOUT_SECONDS
from qemu_errata.errors import TestBedError
from qemu_errata.testbed.bed import (
    HOOKS_DIR,
    RETIRED_WRAPPER,
    Host,
    TestBed,
    guest_xml,
    migrate,
)
from qemu_errata.testbed.users import lock_user, user_processes

# The test bed creates system users.
pytestmark = pytest.mark.root

CORTEX_A53_MIDR = 0x410FD034
TEST_NAMESPACE = "urn:example:testbed-test"


N1 = host_profile("n1", (int(NEOVERSE_N1_MIDR, 16), (0, 1, 2, 3)))
A76 = host_profile("a76", (int(CORTEX_A76_MIDR, 16), (0, 1)))
BIG_LITTLE = host_profile("a57-a53", (int(CORTEX_A57_MIDR, 16), (0, 1)), (CORTEX_A53_MIDR, (2, 3)))

# A hook that logs its arguments into the host's HOME (libvirt passes HOME).
ARGV_HOOK = '#!/bin/sh\necho "$*" >> "$HOME/hook-argv.log"\n'


def footprint(bed: TestBed) -> dict[str, Any]:
    """What to look for after the test bed is gone (test beds in scripts use it too)."""
    return {
        "users": [host.user for host in bed.hosts],
        "uids": [host.uid for host in bed.hosts],
        "paths": [str(path) for host in bed.hosts for path in (host.directory, host.socket_path)]
        + [str(path) for path in bed.hook_files],
    }


@contextlib.contextmanager
def holding(users: list[str]) -> Iterator[None]:
    """Keep other test beds from taking these users while we look at what is left."""
    locks = [lock_user(user) for user in users]
    try:
        if None in locks:
            pytest.skip("another test bed took a user before the check")
        yield
    finally:
        for lock in locks:
            if lock is not None:
                lock.close()


def leftovers(found: dict[str, Any]) -> list[str]:
    """Processes, paths and files of a closed test bed that are still there."""
    problems = [
        f"uid {uid}: processes {pids}" for uid in found["uids"] if (pids := user_processes(uid))
    ]
    problems += [
        f"{path} exists" for path in found["paths"] if os.path.lexists(path) and not retired(path)
    ]
    owners = [arg for uid in found["uids"] for arg in ("-o", "-uid", str(uid))][1:]
    owned = subprocess.run(
        ["find", "/tmp", "/var/tmp", "/dev/shm", "/run", "-xdev", "(", *owners, ")", "-print"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    return problems + [f"{path} is owned by a test-bed user" for path in owned]


def retired(path: str) -> bool:
    """A wrapper that stays, as exit 0, while another test bed's daemons may list it."""
    wrapper = Path(path)
    return wrapper.parent == HOOKS_DIR and wrapper.read_text() == RETIRED_WRAPPER


def hook_log(host: Host) -> list[str]:
    path = host.home / "hook-argv.log"
    return path.read_text().splitlines() if path.exists() else []


def active_on(host: Host, name: str) -> bool:
    return name in host.active_guests()


@pytest.fixture(scope="module")
def argv_hook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    script = tmp_path_factory.mktemp("hooks") / "log-argv"
    script.write_text(ARGV_HOOK)
    script.chmod(0o755)
    return script


@pytest.fixture(scope="module")
def hosts(module_testbed: TestBed, argv_hook: Path) -> list[Host]:
    module_testbed.install_hook(argv_hook)
    return module_testbed.start_hosts([N1, A76, BIG_LITTLE], hook_config={"start_policy": "warn"})


# One test bed of three hosts.


def test_each_host_is_its_own_libvirt_host(hosts: list[Host]) -> None:
    # (getCapabilities would show the UUID, but probes every QEMU binary: 8 s a host)
    for host in hosts:
        libvirtd_conf = tomllib.loads((host.config_dir / "libvirt/libvirtd.conf").read_text())
        assert libvirtd_conf["host_uuid"] == host.uuid
        status = Path(f"/proc/{host.daemon_pid}/status").read_text()
        assert f"Uid:\t{host.uid}\t" in status
        environment = Path(f"/proc/{host.daemon_pid}/environ").read_bytes().split(b"\0")
        assert f"HOME={host.home}".encode() in environment
    assert len({host.uuid for host in hosts}) == 3
    assert len({host.user for host in hosts}) == 3


def test_host_has_its_cpus_in_sysfs_and_its_hook_configuration(hosts: list[Host]) -> None:
    big_little = hosts[2]
    identification = big_little.sysfs_root / "devices/system/cpu/cpu2/regs/identification"
    assert (identification / "midr_el1").read_text() == "0x00000000410fd034\n"
    config = tomllib.loads(big_little.hook_config_path.read_text())
    assert config == {"sysfs_root": str(big_little.sysfs_root), "start_policy": "warn"}

    # The hook, run by this host's daemon (its user, HOME the host's), reads what was written:
    # `hook check` loads the configuration exactly as the hook does, as that user (with our
    # script installed where it looks, and a log that takes lines: this machine may have no
    # syslog).
    as_user = ["runuser", "-u", big_little.user, "--", QEMU_ERRATA, "hook"]
    hooks_dir = ["--hooks-dir", str(big_little.home / "qemu.d")]
    assert subprocess.run([*as_user, "install", *hooks_dir], check=False).returncode == 0
    big_little.write_hook_config({"start_policy": "warn", "log": str(big_little.home / "h.log")})

    def hook_check() -> list[str]:
        done = subprocess.run(
            [*as_user, "check", *hooks_dir, "--home", str(big_little.home)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.splitlines()

    lines = hook_check()
    assert f"configuration: {big_little.hook_config_path}" in lines
    assert f"  sysfs_root = {str(big_little.sysfs_root)!r}  (set)" in lines
    assert "  start_policy = 'warn'  (set)" in lines
    assert f"  timeout_seconds = {DEFAULT_TIMEOUT_SECONDS}  (default)" in lines
    big_little.write_hook_config(
        {"start_policy": "ignore", "timeout_seconds": 5, "log": str(big_little.home / "h.log")}
    )
    lines = hook_check()
    assert "  start_policy = 'ignore'  (set)" in lines
    assert "  timeout_seconds = 5  (set)" in lines
    assert json.loads(big_little.profile_path.read_text()) == BIG_LITTLE.to_json()


def test_guest_migrates_with_its_metadata_and_qemu_arguments(hosts: list[Host]) -> None:
    source, destination = hosts[0], hosts[1]
    mark = etree.Element(f"{{{TEST_NAMESPACE}}}mark", nsmap={"t": TEST_NAMESPACE}, id="42")
    midr = f"neoverse-n1-arm-cpu.midr={CORTEX_A76_MIDR}"
    domain = source.start_guest(
        guest_xml("vm-migrate", "neoverse-n1", metadata=[mark], qemu_args=["-global", midr])
    )
    started = time.monotonic()
    moved = migrate(domain, destination)
    print(f"migration took {time.monotonic() - started:.1f} s")
    assert moved.state()[0] == 1  # VIR_DOMAIN_RUNNING
    assert active_on(destination, "vm-migrate")
    assert not active_on(source, "vm-migrate")
    description = etree.fromstring(moved.XMLDesc().encode())
    assert description.find(f"metadata/{{{TEST_NAMESPACE}}}mark").get("id") == "42"  # type: ignore[union-attr]
    qemu = [
        pid
        for pid in user_processes(destination.uid)
        if b"guest=vm-migrate" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]
    assert len(qemu) == 1
    assert midr.encode() in Path(f"/proc/{qemu[0]}/cmdline").read_bytes().split(b"\0")
    assert "vm-migrate migrate begin -" in hook_log(destination)
    moved.destroy()


def test_saved_guest_restores_on_another_host(hosts: list[Host]) -> None:
    first, second = hosts[2], hosts[0]
    domain = first.start_guest(guest_xml("vm-save"))
    image = first.save(domain)
    assert not active_on(first, "vm-save")
    restored = second.restore(image)
    assert restored.state()[0] == 1  # VIR_DOMAIN_RUNNING
    assert active_on(second, "vm-save")
    assert "vm-save restore begin -" in hook_log(second)
    restored.destroy()


def test_hook_wrapper_runs_the_hook_for_test_bed_users_only(
    module_testbed: TestBed, hosts: list[Host], tmp_path: Path
) -> None:
    wrapper = next(p for p in module_testbed.hook_files if p.parent == HOOKS_DIR)
    for user in ("root", hosts[1].user):
        subprocess.run(
            [str(wrapper), "vm-x", "prepare", "begin", "-"],
            env={"USER": user, "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            stdin=subprocess.DEVNULL,
            check=True,
        )
    assert (tmp_path / "hook-argv.log").read_text() == "vm-x prepare begin -\n"


def test_misuse_is_a_clear_error(
    module_testbed: TestBed, hosts: list[Host], argv_hook: Path
) -> None:
    with pytest.raises(TestBedError, match="install hooks before starting hosts"):
        module_testbed.install_hook(argv_hook)
    with pytest.raises(TestBedError, match="not a bare TOML key"):
        hosts[0].write_hook_config({"two words": 1})


# Teardown: nothing is left, however the test bed ends.


def test_close_leaves_no_process_file_socket_or_hook(argv_hook: Path) -> None:
    with TestBed() as bed:
        bed.install_hook(argv_hook)
        (host,) = bed.start_hosts([A76])
        host.save(host.start_guest(guest_xml("vm-close")))
        host.start_guest(guest_xml("vm-close-2"))
        found = footprint(bed)
        assert len(found["paths"]) == 5
        assert all(os.path.lexists(p) for p in found["paths"])
    with holding(found["users"]):
        assert leftovers(found) == []


def test_a_closing_test_bed_retires_its_wrappers_while_another_is_live(argv_hook: Path) -> None:
    # libvirt runs every wrapper in qemu.d for every daemon: had the closing test bed
    # unlinked its wrapper, a hook call of the live one could fail to exec it.
    with TestBed() as live:
        live.start_hosts([A76])
        with TestBed() as closing:
            closing.install_hook(argv_hook)
            closing.start_hosts([N1])
            (wrapper,) = (path for path in closing.hook_files if path.parent == HOOKS_DIR)
        assert wrapper.read_text() == RETIRED_WRAPPER
        found = footprint(closing)
    with holding(found["users"]):
        assert leftovers(found) == []


def test_close_runs_when_the_test_bed_block_raises() -> None:
    with pytest.raises(RuntimeError), TestBed() as bed:  # noqa: PT012 - the block is the test
        (host,) = bed.start_hosts([N1])
        host.start_guest(guest_xml("vm-raise"))
        found = footprint(bed)
        raise RuntimeError("a failing test")
    with holding(found["users"]):
        assert leftovers(found) == []


SCRIPT = """
from __future__ import annotations
import json, sys, time
from typing import Any
from pathlib import Path
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.profile import HostProfile
from qemu_errata.testbed.bed import TestBed, guest_xml
# footprint()
profile = HostProfile("n1", (Implementation(0x414fd0c1, 0, None, (0, 1)),), {}, None, None)
with TestBed() as bed:
    bed.install_hook(Path(sys.argv[2]))
    (host,) = bed.start_hosts([profile])
    host.start_guest(guest_xml("vm-script"))
    Path(sys.argv[1]).write_text(json.dumps(footprint(bed)))
    time.sleep(120)
"""

PYTEST_FILE = """
from __future__ import annotations
import json, os, time
from typing import Any
from pathlib import Path
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.profile import HostProfile
from qemu_errata.testbed.bed import TestBed, guest_xml
from qemu_errata.errors import TestBedError

# footprint()

def test_inner(testbed):
    bed = testbed
    profile = HostProfile("n1", (Implementation(0x414fd0c1, 0, None, (0, 1)),), {}, None, None)
    (host,) = bed.start_hosts([profile])
    host.start_guest(guest_xml("vm-inner"))
    Path(os.environ["FOOTPRINT_FILE"]).write_text(json.dumps(footprint(bed)))
    assert os.environ["INNER_MODE"] != "fail", "failing on purpose"
    time.sleep(120)
"""


def with_footprint(source: str) -> str:
    return source.replace("# footprint()\n", inspect.getsource(footprint))


def run_until_footprint(
    command: list[str], found_at: Path, cwd: Path, mode: str = ""
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    environment = {**os.environ, "FOOTPRINT_FILE": str(found_at), "INNER_MODE": mode}
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=environment,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not found_at.exists() or not found_at.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the test bed did not start: {process.communicate()[0]}")
        time.sleep(0.05)
    return process, json.loads(found_at.read_text())


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_to_a_test_bed_script_tears_it_down(
    signum: int, tmp_path: Path, argv_hook: Path
) -> None:
    script = tmp_path / "bed.py"
    script.write_text(with_footprint(SCRIPT))
    found_at = tmp_path / "footprint.json"
    process, found = run_until_footprint(
        [sys.executable, str(script), str(found_at), str(argv_hook)], found_at, tmp_path
    )
    assert all(os.path.lexists(p) for p in found["paths"])
    process.send_signal(signum)
    output = process.communicate(timeout=60)[0]
    assert process.returncode != 0
    assert "KeyboardInterrupt" in output
    with holding(found["users"]):
        assert leftovers(found) == []


@pytest.mark.parametrize("mode", ["fail", "interrupt"])
def test_pytest_fixture_tears_down_after_a_failure_or_ctrl_c(mode: str, tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(with_footprint(PYTEST_FILE))
    found_at = tmp_path / "footprint.json"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"]
    process, found = run_until_footprint(command, found_at, tmp_path, mode)
    if mode == "interrupt":
        process.send_signal(signal.SIGINT)
    output = process.communicate(timeout=60)[0]
    expected = {"fail": (1, "failing on purpose"), "interrupt": (2, "KeyboardInterrupt")}[mode]
    assert (process.returncode, expected[1] in output) == (expected[0], True), output
    with holding(found["users"]):
        assert leftovers(found) == []
