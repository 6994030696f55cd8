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
import contextlib
import copy
import errno
import fcntl
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any
from urllib.parse import quote

import libvirt
from lxml import etree

from qemu_errata import processes
from qemu_errata.core.cpulist import format_cpus
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import TestBedError
from qemu_errata.files import write_atomically, write_json
from qemu_errata.testbed.users import (
    HostUser,
    kill_user_processes,
    reap_orphans_of,
    stop_reaping,
    take_user,
)
from qemu_errata.vmm.domain_xml import ARG_TAG, COMMANDLINE_TAG, QEMU_NAMESPACE
from qemu_errata.vmm.xml_parser import parse_xml

HOOKS_DIR = Path("/etc/libvirt/hooks/qemu.d")
DEFAULT_BASE_DIR = Path(tempfile.gettempdir()) / "qemu-errata-testbed"
DEFAULT_CPU_MODEL = "cortex-a57"
# An 8-byte ROM: "wfi; b .-4" (0xd503207f, 0x17ffffff), so a guest without
# an OS sleeps instead of spinning TCG through an empty flash.
IDLE_FIRMWARE = Path(__file__).parent.parent / "data" / "testbed-idle.rom"
# A 32-byte ROM that fills the first 4 MiB of RAM with ones, then counts in
# x0 forever: the vCPU keeps a host CPU busy under TCG, and a migration has
# 4 MiB to copy, so a bandwidth limit holds it in its copy phase for a while.
#   movz x1, #0x4000, lsl #16; movz x2, #0x4040, lsl #16; movn x3, #0
#   1: str x3, [x1], #8; cmp x1, x2; b.lo 1b
#   2: add x0, x0, #1; b 2b
BUSY_FIRMWARE = Path(__file__).parent.parent / "data" / "testbed-busy.rom"

# libvirt runs every executable of qemu.d, so the daemons of every live test
# bed run every test bed's wrappers, and a wrapper unlinked between libvirt's
# readdir and its exec fails their hook call ("cannot execute binary"). So a
# test bed holds a shared lock on HOOKS_LOCK while its daemons live; at
# teardown it retires its wrappers (rewrites them, atomically, to exit 0), and
# the retired wrappers are unlinked only by a test bed that then gets the lock
# exclusively, that is when no other test bed is live.
HOOKS_LOCK = Path("/run/lock/qemu-errata-testbed.hooks")
RETIRED_WRAPPER = (
    "#!/bin/sh\n# A closed qemu-errata test bed's hook (removed when none is live).\nexit 0\n"
)

_DAEMON_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_START_TIMEOUT_S = 20.0
_HOOK_WRAPPER_PREFIX = "qemu-errata-testbed."
_TOML_KEY = re.compile(r"[A-Za-z0-9_-]+")

HookValue = str | int | bool


class Host:
    """One simulated host; made by ``TestBed.start_hosts``.

    ``name`` is the profile's host name, ``user``/``uid``/``gid`` the user its
    daemon and QEMUs run as, ``uuid`` its libvirt ``host_uuid``; the
    properties are the paths of the layout above.
    """

    def __init__(self, profile: HostProfile, user: HostUser, directory: Path) -> None:
        self.name = profile.host
        self.profile = profile
        self.user = user.name
        self.uid = user.uid
        self.gid = user.gid
        self.uuid = str(uuid.uuid4())
        self.directory = directory
        self._daemon: subprocess.Popen[bytes] | None = None
        self._guardian: processes.Guardian | None = None
        self._connection: Any = None

    @property
    def home(self) -> Path:
        return self.directory / "home"

    @property
    def runtime_dir(self) -> Path:
        return self.directory / "run"

    @property
    def config_dir(self) -> Path:
        return self.directory / "config"

    @property
    def cache_dir(self) -> Path:
        return self.directory / "cache"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def saves_dir(self) -> Path:
        return self.directory / "saves"

    @property
    def log_path(self) -> Path:
        return self.directory / "libvirtd.log"

    @property
    def sysfs_root(self) -> Path:
        return self.home / "sys"

    @property
    def hook_config_path(self) -> Path:
        return self.home / ".config" / "qemu-errata" / "hook.toml"

    @property
    def profile_path(self) -> Path:
        return self.home / "host-profile.json"

    @property
    def socket_path(self) -> Path:
        return self.runtime_dir / "libvirt" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///session?socket={quote(str(self.socket_path))}"

    @property
    def daemon_pid(self) -> int:
        if self._daemon is None:
            raise TestBedError(f"host {self.name}: the daemon is not running")
        return self._daemon.pid

    @property
    def connection(self) -> Any:
        """The root client's libvirt-python connection (a virConnect)."""
        if self._connection is None:
            raise TestBedError(f"host {self.name}: not connected")
        return self._connection

    def write_hook_config(self, extra: Mapping[str, HookValue]) -> None:
        """Write hook.toml: ``sysfs_root`` plus ``extra`` (the hook reads it on every call)."""
        text = _toml({"sysfs_root": str(self.sysfs_root), **extra})
        write_atomically(self.hook_config_path, text.encode(), 0o600)
        os.chown(self.hook_config_path, self.uid, self.gid)

    def define_guest(self, domain: etree._Element | str) -> Any:
        """Define a domain (e.g. from ``guest_xml``); returns the virDomain."""
        if not isinstance(domain, str):
            domain = etree.tostring(domain, encoding="unicode")
        return self.connection.defineXML(domain)

    def start_guest(self, domain: etree._Element | str) -> Any:
        """Define and start a domain; returns the running virDomain."""
        guest = self.define_guest(domain)
        guest.create()
        return guest

    def active_guests(self) -> set[str]:
        """Names of the domains running (or paused) on this host."""
        active = self.connection.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        return {domain.name() for domain in active}

    def save(self, domain: Any) -> Path:
        """Save a running domain of this host to an image in ``saves_dir``; it stops."""
        image = self.saves_dir / f"{domain.name()}.save"
        domain.save(str(image))
        return image

    def restore(self, image: Path) -> Any:
        """Restore a save image (copied here first if it is another host's); returns the domain."""
        if image.parent != self.saves_dir:
            local = self.saves_dir / image.name
            shutil.copyfile(image, local)
            os.chown(local, self.uid, self.gid)
            image = local
        self.connection.restore(str(image))
        description = self.connection.saveImageGetXMLDesc(str(image), 0)
        name = parse_xml(description.encode(), str(image)).findtext("name")
        return self.connection.lookupByName(name)

    def restart(self) -> None:
        """Start the daemon again (killing it first if it runs) and reconnect.

        As when systemd restarts a libvirtd that died: the new daemon takes
        over the QEMUs the old one left and cleans up its interrupted jobs.
        """
        if self._connection is not None:
            with contextlib.suppress(libvirt.libvirtError):
                self._connection.close()
            self._connection = None
        if self._daemon is not None:
            self._daemon.kill()
            self._daemon.wait(timeout=_START_TIMEOUT_S)
        _launch(self)


def guest_xml(
    name: str,
    cpu_model: str = DEFAULT_CPU_MODEL,
    *,
    metadata: Iterable[etree._Element] = (),
    qemu_args: Sequence[str] = (),
    firmware: Path = IDLE_FIRMWARE,
) -> etree._Element:
    """Domain XML of a small aarch64 TCG guest: virt machine, 128 MiB, no disk, no OS.

    ``metadata`` elements (each in its own namespace) go under ``<metadata>``;
    ``qemu_args`` become ``<qemu:commandline>`` arguments; ``firmware`` is the
    ROM the vCPU runs (IDLE_FIRMWARE sleeps, BUSY_FIRMWARE spins).
    """
    emulator = shutil.which("qemu-system-aarch64")
    if emulator is None:
        raise TestBedError("qemu-system-aarch64 not found: install qemu-system-arm")
    template = resources.files("xml_templates").joinpath("testbed-guest.xml")
    domain = parse_xml(template.read_bytes(), "xml_templates/testbed-guest.xml")
    _child(domain, "name").text = name
    _child(domain, "cpu/model").text = cpu_model
    _child(domain, "os/loader").text = str(firmware)
    _child(domain, "devices/emulator").text = emulator
    elements = list(metadata)
    if elements:
        etree.SubElement(domain, "metadata").extend(copy.deepcopy(e) for e in elements)
    if qemu_args:
        commandline = etree.SubElement(domain, COMMANDLINE_TAG, nsmap={"qemu": QEMU_NAMESPACE})
        for argument in qemu_args:
            etree.SubElement(commandline, ARG_TAG, value=argument)
    return domain


def migrate(domain: Any, destination: Host, flags: int = libvirt.VIR_MIGRATE_LIVE) -> Any:
    """Migrate a domain to ``destination`` over a free loopback port; returns the new virDomain."""
    params = {libvirt.VIR_MIGRATE_PARAM_URI: f"tcp://127.0.0.1:{free_port()}"}
    return domain.migrate3(destination.connection, params, flags)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cpu_host(name: str, midr: int, cpus: tuple[int, ...] = (0, 1)) -> HostProfile:
    """A host profile of CPUs of one MIDR and nothing else: all the hook reads of a host."""
    return HostProfile(
        host=name,
        implementations=(Implementation(midr, 0, None, cpus),),
        id_registers={},
        writable_masks=None,
        timer_frequency_hz=None,
    )


def write_sysfs_tree(profile: HostProfile, root: Path) -> None:
    """The sysfs files the arm64 kernel shows for ``profile``'s CPUs, under ``root``.

    Per CPU ``devices/system/cpu/cpuN/regs/identification/{midr_el1,revidr_el1}``
    (an unknown REVIDR is written as 0), and the ``possible``, ``present`` and
    ``online`` CPU lists.
    """
    cpu_dir = root / "devices" / "system" / "cpu"
    cpus: list[int] = []
    for implementation in profile.implementations:
        for cpu in implementation.cpus:
            identification = cpu_dir / f"cpu{cpu}" / "regs" / "identification"
            identification.mkdir(parents=True)
            (identification / "midr_el1").write_text(_sysfs_register(implementation.midr))
            revidr = implementation.revidr or 0
            (identification / "revidr_el1").write_text(_sysfs_register(revidr))
            cpus.append(cpu)
    for name in ("possible", "present", "online"):
        (cpu_dir / name).write_text(format_cpus(cpus) + "\n")


def _sysfs_register(value: int) -> str:
    return f"0x{value:016x}\n"  # the kernel's "0x%016llx\n"


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
            self._hooks_lock = _share_hooks_lock()
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
            _launch(host)
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
            _attempt(problems, _stop, host)
        for path in reversed(self._hook_files):
            _attempt(problems, _retire if path.parent == HOOKS_DIR else _remove, path)
        if self._hooks_lock is not None:
            _attempt(problems, self._release_hooks_lock)
        for host in self.hosts:
            _attempt(problems, _remove, host.directory)
        for lock in self._locks:
            lock.close()
        _attempt(problems, _remove_if_empty, self.base_dir)
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
            for wrapper in HOOKS_DIR.glob(f"{_HOOK_WRAPPER_PREFIX}*"):
                if _is_retired(wrapper):
                    _remove(wrapper)
            for directory in reversed(self._created_dirs):
                _remove_if_empty(directory)
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
            wrapper = HOOKS_DIR / f"{_HOOK_WRAPPER_PREFIX}{token}.{name}"
            for path in (script, wrapper):
                if path not in self._hook_files:
                    self._hook_files.append(path)
            write_atomically(script, content, 0o755)
            write_atomically(wrapper, _hook_wrapper(users, script).encode(), 0o755)


def _hook_wrapper(users: str, script: Path) -> str:
    return (
        "#!/bin/sh\n"
        "# Installed by the qemu-errata test bed; retired at its teardown.\n"
        "# Runs the hook only for the daemons of the test bed's users.\n"
        f'case "$USER" in\n{users}) exec {shlex.quote(str(script))} "$@" ;;\nesac\nexit 0\n'
    )


def _share_hooks_lock() -> int:
    """A descriptor holding HOOKS_LOCK shared (waits while a closing test bed unlinks)."""
    flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    descriptor = os.open(HOOKS_LOCK, flags, 0o644)
    fcntl.flock(descriptor, fcntl.LOCK_SH)
    return descriptor


def _retire(wrapper: Path) -> None:
    """Make a wrapper exit 0, in place: libvirt may be about to run it for another test bed."""
    if wrapper.exists():
        write_atomically(wrapper, RETIRED_WRAPPER.encode(), 0o755)


def _is_retired(wrapper: Path) -> bool:
    try:
        return wrapper.read_text() == RETIRED_WRAPPER
    except (OSError, UnicodeDecodeError):
        return False


def _check_requirements() -> None:
    if os.geteuid() != 0:
        raise TestBedError("the test bed runs as root (it creates users and hook files)")
    for program in ("libvirtd", "qemu-system-aarch64", "useradd"):
        if shutil.which(program, path=_DAEMON_PATH) is None:
            raise TestBedError(f"{program} not found in {_DAEMON_PATH}: run scripts/install")


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
        _remove(path)
    for wrapper in HOOKS_DIR.glob(f"{_HOOK_WRAPPER_PREFIX}{user.name}.*"):
        _retire(wrapper)


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
    (host.config_dir / "libvirt" / "libvirtd.conf").write_text(_toml({"host_uuid": host.uuid}))
    host.write_hook_config(hook_config)
    _seed_capabilities(host)
    for parent, subdirectories, files in os.walk(host.directory):
        os.chown(parent, host.uid, host.gid)
        for name in (*subdirectories, *files):
            os.chown(os.path.join(parent, name), host.uid, host.gid, follow_symlinks=False)


# libvirt caches what it probed of a QEMU binary (about 1.5 s here) per
# daemon; it checks the cache's validity itself, so copying the first host's
# cache into the others is safe.
_capabilities_cache: dict[str, bytes] = {}


def _capabilities_dir(host: Host) -> Path:
    return host.cache_dir / "libvirt" / "qemu" / "cache" / "capabilities"


def _seed_capabilities(host: Host) -> None:
    if not _capabilities_cache:
        return
    directory = _capabilities_dir(host)
    directory.mkdir(parents=True)
    for name, content in _capabilities_cache.items():
        (directory / name).write_bytes(content)


def _remember_capabilities(host: Host) -> None:
    if _capabilities_cache:
        return
    emulator = shutil.which("qemu-system-aarch64", path=_DAEMON_PATH)
    host.connection.getDomainCapabilities(emulator, "aarch64", "virt", "qemu", 0)
    for path in _capabilities_dir(host).glob("*.xml"):
        _capabilities_cache[path.name] = path.read_bytes()


def _launch(host: Host) -> None:
    """Start the host's libvirtd as its user and connect to it."""
    environment = {
        "PATH": _DAEMON_PATH,
        "HOME": str(host.home),
        "USER": host.user,
        "LOGNAME": host.user,
        "XDG_RUNTIME_DIR": str(host.runtime_dir),
        "XDG_CONFIG_HOME": str(host.config_dir),
        "XDG_CACHE_HOME": str(host.cache_dir),
        "XDG_DATA_HOME": str(host.data_dir),
    }
    with host.log_path.open("ab") as log:
        host._daemon = processes.start(
            ["libvirtd"],
            executable=shutil.which("libvirtd", path=_DAEMON_PATH),
            user=host.uid,
            group=host.gid,
            extra_groups=[],
            env=environment,
            cwd=host.directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            umask=0o077,
        )
    # libvirtd's QEMUs leave its process tree: on our death, kill all that the user runs.
    # One guardian per host: a restarted daemon keeps the first (it guards the user).
    if host._guardian is None:
        host._guardian = processes.Guardian(
            "exec kill -9 -1", user=host.uid, group=host.gid, extra_groups=[]
        )
    reap_orphans_of(host.uid, spare=host._daemon.pid)
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not _listening(host.socket_path):
        status = host._daemon.poll()
        if status is not None:
            raise TestBedError(
                f"host {host.name}: libvirtd exited with status {status}: {_last_line(host)}"
            )
        if time.monotonic() > deadline:
            raise TestBedError(f"host {host.name}: libvirtd did not start in {_START_TIMEOUT_S} s")
        time.sleep(0.01)
    host._connection = libvirt.open(host.uri)
    _remember_capabilities(host)


def _listening(path: Path) -> bool:
    """Whether a daemon listens on the Unix socket (libvirtd binds it well before)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return False
    return True


def _stop(host: Host) -> None:
    """Kill the host's daemon, QEMUs and virtlogd, and reap them."""
    kill_user_processes(host.uid)
    if host._guardian is not None:
        host._guardian.release()
        host._guardian = None
    if host._daemon is not None:
        host._daemon.wait(timeout=_START_TIMEOUT_S)
        stop_reaping(host.uid)


def _last_line(host: Host) -> str:
    lines = host.log_path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"no output (see {host.log_path})"


def _toml(values: Mapping[str, HookValue]) -> str:
    """A flat TOML table (JSON string escapes are valid TOML basic-string escapes)."""
    lines = []
    for key, value in values.items():
        if not _TOML_KEY.fullmatch(key):
            raise TestBedError(f"hook configuration key {key!r}: not a bare TOML key")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | str):
            text = json.dumps(value)
        else:
            raise TestBedError(f"hook configuration key {key!r}: not a string, integer or bool")
        lines.append(f"{key} = {text}\n")
    return "".join(lines)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _remove_if_empty(directory: Path) -> None:
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


def _child(element: etree._Element, path: str) -> etree._Element:
    found = element.find(path)
    if found is None:
        raise TestBedError(f"testbed-guest.xml: no {path} element")
    return found


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
