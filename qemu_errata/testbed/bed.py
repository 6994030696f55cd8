"""Several simulated arm64 hosts on one machine: the qemu-errata test bed (shell).

A *host* is one session libvirt daemon (``libvirtd`` run as an unprivileged
user is a session daemon) with:

- a dedicated system user ``qe-tb-<n>``, created if missing and reused
  afterwards; a user serves one live test bed at a time (a lock held for the
  life of the host), so test beds in several processes do not collide;
- its own ``HOME`` and ``XDG_RUNTIME_DIR``/``XDG_CONFIG_HOME``/
  ``XDG_CACHE_HOME``/``XDG_DATA_HOME``, and its own random ``host_uuid``
  (two daemons with one UUID refuse to migrate);
- a "physical CPU": a sysfs tree (``Host.sysfs_root``) with
  ``devices/system/cpu/cpuN/regs/identification/{midr_el1,revidr_el1}`` for
  the implementations of a HostProfile, as the kernel prints them;
- its own hook configuration ``$HOME/.config/qemu-errata/hook.toml`` holding
  ``sysfs_root`` and whatever keys the caller adds (libvirt gives hooks
  ``HOME``, so that is how a host's hook finds its configuration).

Layout under the base directory (default ``/tmp/qemu-errata-testbed``)::

    <base>/qe-tb-<n>/            Host.directory (owner: the host's user, 0700)
        home/                    HOME
            sys/                 Host.sysfs_root
            .config/qemu-errata/hook.toml
            host-profile.json    Host.profile_path: the profile the host was built from
        run/ config/ cache/ data/  the XDG directories
        saves/                   save images (Host.save / Host.restore)
        libvirtd.log             the daemon's output
    <base>/qe-tb-<n>.hooks/      copies of the installed hook scripts

Hooks: libvirt runs the executables in ``/etc/libvirt/hooks/qemu.d/`` for
session daemons too, and finds them when a daemon starts. ``install_hook``
(before ``start_hosts``) puts there a small wrapper that runs the script only
for this test bed's users, so other daemons on the machine never see it.

Guests are small aarch64 TCG domains (``guest_xml``) whose firmware is a WFI
loop: they need no OS and use no CPU (``BUSY_FIRMWARE`` instead keeps a host
CPU busy and gives a migration 4 MiB to copy). A root client drives each
host through ``Host.connection`` (libvirt-python) at
``qemu+unix:///session?socket=<XDG_RUNTIME_DIR>/libvirt/libvirt-sock``;
``migrate`` moves a running guest in well under a second (this process
reaps the test bed's exited QEMUs at once, see ``testbed_users``), and
``Host.save``/``Host.restore`` move it through a save image.
``Host.restart`` starts a host's daemon again after a test killed it, as
systemd restarts a libvirtd that died.

Timings here (2 cores): the first host of a process takes about 1.8 s (its
daemon probes QEMU; later hosts reuse the probe), each further host 0.1 s,
a guest start 0.1 s, a migration 0.3-0.6 s, a save or restore 0.3 s, the
teardown 0.1 s.

Teardown (``TestBed.close``, run by ``with``, at interpreter exit, and on
SIGINT or SIGTERM, which raise KeyboardInterrupt while a test bed is open)
kills every process of the test bed's users, removes their directories,
sockets and save images, and the hook files (a wrapper in qemu.d stays,
retired to ``exit 0``, until no test bed is live: see HOOKS_LOCK). A user's
leftovers from a test bed that was killed outright (SIGKILL) are removed when
the user is next taken.

Usage (as root)::

    with TestBed() as bed:
        bed.install_hook(Path("hook.sh"))
        a, b = bed.start_hosts([n1_profile, a76_profile], hook_config={"start_policy": "enforce"})
        domain = a.start_guest(guest_xml("vm1", "neoverse-n1"))
        domain = migrate(domain, b)
        assert b.active_guests() == {"vm1"}
        b.restore(b.save(domain))
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import libvirt

from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import TestBedError
from qemu_errata.files import write_atomically, write_json
from qemu_errata.testbed.guests import (
    BUSY_FIRMWARE,
    DEFAULT_CPU_MODEL,
    IDLE_FIRMWARE,
    free_port,
    guest_xml,
    migrate,
)
from qemu_errata.testbed.hooks import (
    HOOK_WRAPPER_PREFIX,
    HOOKS_DIR,
    HOOKS_LOCK,
    RETIRED_WRAPPER,
    HookValue,
    hook_toml,
    hook_wrapper,
    is_retired,
    retire,
    share_hooks_lock,
)
from qemu_errata.testbed.host import DAEMON_PATH, Host, launch, seed_capabilities, stop
from qemu_errata.testbed.sysfs_tree import cpu_host, write_sysfs_tree
from qemu_errata.testbed.users import (
    HostUser,
    kill_user_processes,
    take_user,
)
from qemu_errata.vmm.domain_xml import QEMU_NAMESPACE

# The test bed's front door: what its users import from here (see Usage above).
__all__ = [
    "BUSY_FIRMWARE",
    "DEFAULT_BASE_DIR",
    "DEFAULT_CPU_MODEL",
    "HOOKS_DIR",
    "HOOKS_LOCK",
    "IDLE_FIRMWARE",
    "QEMU_NAMESPACE",
    "RETIRED_WRAPPER",
    "HookValue",
    "Host",
    "TestBed",
    "cpu_host",
    "free_port",
    "guest_xml",
    "migrate",
    "write_sysfs_tree",
]

DEFAULT_BASE_DIR = Path(tempfile.gettempdir()) / "qemu-errata-testbed"


class TestBed:
    """Simulated hosts and their hooks; a context manager that tears all down."""

    __test__ = False  # not a pytest test class

    def __init__(self, base_dir: Path = DEFAULT_BASE_DIR) -> None:
        self.base_dir = base_dir
        self.hosts: list[Host] = []
        self._hooks: dict[str, bytes] = {}
        self._hook_files: list[Path] = []
        self._created_dirs: list[Path] = []
        self._locks: list[socket.socket] = []
        self._hooks_lock: int | None = None  # our share of HOOKS_LOCK, while daemons live
        self._closed = False

    def __enter__(self) -> TestBed:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def hook_files(self) -> list[Path]:
        """The files ``install_hook`` put on the machine (wrappers and script copies).

        After ``close`` a wrapper may stay, retired (RETIRED_WRAPPER), while
        another test bed is live.
        """
        return list(self._hook_files)

    def install_hook(self, script: Path) -> None:
        """Have this test bed's daemons run ``script`` as a libvirt qemu hook.

        Must come before ``start_hosts``: libvirt finds hooks when a daemon starts.
        """
        if self.hosts:
            raise TestBedError(
                f"{script}: install hooks before starting hosts (daemons find hooks at start)"
            )
        if not (script.is_file() and os.access(script, os.X_OK)):
            raise TestBedError(f"{script}: not an executable file")
        if script.name in self._hooks:
            raise TestBedError(f"{script}: a hook named {script.name!r} is already installed")
        self._hooks[script.name] = script.read_bytes()

    def start_hosts(
        self, profiles: Iterable[HostProfile], hook_config: Mapping[str, HookValue] | None = None
    ) -> list[Host]:
        """Start one host per profile; ``hook_config`` adds keys to each host's hook.toml."""
        if self._closed:
            raise TestBedError("this test bed is closed")
        _check_requirements()
        _track(self)
        if self._hooks_lock is None:
            self._hooks_lock = share_hooks_lock()
        started = []
        for profile in profiles:
            user = self._take_user()
            host = Host(profile, user, self.base_dir / user.name)
            _make_host_dir(self.base_dir, host.directory)
            self.hosts.append(host)
            started.append(host)
            _prepare_host(host, dict(hook_config or {}))
        self._write_hooks()
        for host in started:
            launch(host)
        return started

    def close(self) -> None:
        """Tear everything down; safe to call twice. Blocks SIGINT/SIGTERM meanwhile."""
        if self._closed:
            return
        self._closed = True
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            problems = self._teardown()
        finally:
            _untrack(self)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if problems:
            raise TestBedError("teardown: " + "; ".join(problems))

    def _teardown(self) -> list[str]:
        problems: list[str] = []
        for host in self.hosts:
            if host._connection is not None:
                _attempt(problems, host._connection.close)
                host._connection = None
        for host in self.hosts:
            _attempt(problems, stop, host)
        for path in reversed(self._hook_files):
            _attempt(problems, retire if path.parent == HOOKS_DIR else remove, path)
        if self._hooks_lock is not None:
            _attempt(problems, self._release_hooks_lock)
        for host in self.hosts:
            _attempt(problems, remove, host.directory)
        for lock in self._locks:
            lock.close()
        _attempt(problems, remove_if_empty, self.base_dir)
        return problems

    def _release_hooks_lock(self) -> None:
        """Drop our share of HOOKS_LOCK; if no other test bed is live, unlink retired wrappers."""
        descriptor, self._hooks_lock = self._hooks_lock, None
        if descriptor is None:
            return
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)  # another test bed is live: the last one to close unlinks them
            return
        try:
            for wrapper in HOOKS_DIR.glob(f"{HOOK_WRAPPER_PREFIX}*"):
                if is_retired(wrapper):
                    remove(wrapper)
            for directory in reversed(self._created_dirs):
                remove_if_empty(directory)
        finally:
            os.close(descriptor)

    def _take_user(self) -> HostUser:
        """A free test-bed user, cleared of what an earlier test bed left."""
        user, lock = take_user()
        self._locks.append(lock)
        _clear_leftovers(user, self.base_dir)
        return user

    def _write_hooks(self) -> None:
        """Copies of the hook scripts, and wrappers running them for our users only."""
        if not self._hooks or not self.hosts:
            return
        token = self.hosts[0].user
        copies = self.base_dir / f"{token}.hooks"
        if not copies.exists():
            copies.mkdir(mode=0o755)
            self._hook_files.append(copies)
        for directory in (HOOKS_DIR.parent, HOOKS_DIR):
            if not directory.exists():
                directory.mkdir(mode=0o755)
                self._created_dirs.append(directory)
        users = "|".join(host.user for host in self.hosts)
        for name, content in self._hooks.items():
            script = copies / name
            wrapper = HOOKS_DIR / f"{HOOK_WRAPPER_PREFIX}{token}.{name}"
            for path in (script, wrapper):
                if path not in self._hook_files:
                    self._hook_files.append(path)
            write_atomically(script, content, 0o755)
            write_atomically(wrapper, hook_wrapper(users, script).encode(), 0o755)


def _check_requirements() -> None:
    if os.geteuid() != 0:
        raise TestBedError("the test bed runs as root (it creates users and hook files)")
    for program in ("libvirtd", "qemu-system-aarch64", "useradd"):
        if shutil.which(program, path=DAEMON_PATH) is None:
            raise TestBedError(f"{program} not found in {DAEMON_PATH}: run scripts/install")


def _make_base_dir(base: Path) -> None:
    """A root-owned directory the test-bed users can traverse but not list."""
    base.mkdir(mode=0o711, parents=True, exist_ok=True)
    status = base.lstat()
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != 0:
        raise TestBedError(f"{base}: not a directory owned by root")
    base.chmod(0o711)
    for parent in base.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise TestBedError(f"{base}: {parent} is not searchable by the test-bed users")


def _make_host_dir(base: Path, directory: Path) -> None:
    """The host's directory, in a base that another test bed may remove when empty."""
    for _ in range(3):
        _make_base_dir(base)
        try:
            directory.mkdir(mode=0o700)
            return
        except FileNotFoundError:
            continue  # another test bed's teardown removed the empty base meanwhile
    raise TestBedError(f"{directory}: cannot create it")


def _clear_leftovers(user: HostUser, base: Path) -> None:
    """What a test bed killed outright (SIGKILL) left behind for this user."""
    kill_user_processes(user.uid)
    for path in (base / user.name, base / f"{user.name}.hooks"):
        remove(path)
    for wrapper in HOOKS_DIR.glob(f"{HOOK_WRAPPER_PREFIX}{user.name}.*"):
        retire(wrapper)


def _prepare_host(host: Host, hook_config: dict[str, HookValue]) -> None:
    """The host's directories and files, all owned by its user."""
    for directory in (
        host.home,
        host.runtime_dir,
        host.config_dir / "libvirt",
        host.cache_dir,
        host.data_dir,
        host.saves_dir,
        host.hook_config_path.parent,
    ):
        directory.mkdir(mode=0o700, parents=True)
    write_sysfs_tree(host.profile, host.sysfs_root)
    write_json(host.profile_path, host.profile.to_json())
    (host.config_dir / "libvirt" / "libvirtd.conf").write_text(hook_toml({"host_uuid": host.uuid}))
    host.write_hook_config(hook_config)
    seed_capabilities(host)
    for parent, subdirectories, files in os.walk(host.directory):
        os.chown(parent, host.uid, host.gid)
        for name in (*subdirectories, *files):
            os.chown(os.path.join(parent, name), host.uid, host.gid, follow_symlinks=False)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except FileNotFoundError:
        pass
    except OSError as error:
        if error.errno != errno.ENOTEMPTY:
            raise


def _attempt(problems: list[str], action: Any, *args: Any) -> None:
    """Run one teardown step; a failure is noted and the teardown goes on."""
    try:
        action(*args)
    except (OSError, subprocess.TimeoutExpired, libvirt.libvirtError, TestBedError) as error:
        problems.append(str(error))


# Open test beds are torn down at interpreter exit, and SIGTERM becomes
# KeyboardInterrupt (like SIGINT) so that ``with`` blocks and pytest fixtures
# unwind instead of the process dying with the daemons still running.
_open_beds: list[TestBed] = []
_previous_sigterm: list[Any] = []  # the handler ours replaced, while ours is in place


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _track(bed: TestBed) -> None:
    if bed in _open_beds:
        return
    _open_beds.append(bed)
    if not _previous_sigterm and threading.current_thread() is threading.main_thread():
        _previous_sigterm.append(signal.signal(signal.SIGTERM, _interrupt))


def _untrack(bed: TestBed) -> None:
    if bed not in _open_beds:
        return
    _open_beds.remove(bed)
    if (
        not _open_beds
        and _previous_sigterm
        and (threading.current_thread() is threading.main_thread())
    ):
        previous = _previous_sigterm.pop()
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


@atexit.register
def _close_open_beds() -> None:
    for bed in list(_open_beds):
        bed.close()
