"""One simulated host of the test bed: its directories, its session libvirtd, its guests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import libvirt
from lxml import etree

from qemu_errata import processes
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import TestBedError
from qemu_errata.files import write_atomically
from qemu_errata.testbed.hooks import HookValue, hook_toml
from qemu_errata.testbed.users import (
    HostUser,
    kill_user_processes,
    reap_orphans_of,
    stop_reaping,
)
from qemu_errata.vmm.xml_parser import parse_xml

DAEMON_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT_S = 20.0


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
        text = hook_toml({"sysfs_root": str(self.sysfs_root), **extra})
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
            self._daemon.wait(timeout=START_TIMEOUT_S)
        launch(self)


# libvirt caches what it probed of a QEMU binary (about 1.5 s here) per
# daemon; it checks the cache's validity itself, so copying the first host's
# cache into the others is safe.
capabilities_cache: dict[str, bytes] = {}


def capabilities_dir(host: Host) -> Path:
    return host.cache_dir / "libvirt" / "qemu" / "cache" / "capabilities"


def seed_capabilities(host: Host) -> None:
    if not capabilities_cache:
        return
    directory = capabilities_dir(host)
    directory.mkdir(parents=True)
    for name, content in capabilities_cache.items():
        (directory / name).write_bytes(content)


def remember_capabilities(host: Host) -> None:
    if capabilities_cache:
        return
    emulator = shutil.which("qemu-system-aarch64", path=DAEMON_PATH)
    host.connection.getDomainCapabilities(emulator, "aarch64", "virt", "qemu", 0)
    for path in capabilities_dir(host).glob("*.xml"):
        capabilities_cache[path.name] = path.read_bytes()


def launch(host: Host) -> None:
    """Start the host's libvirtd as its user and connect to it."""
    environment = {
        "PATH": DAEMON_PATH,
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
            executable=shutil.which("libvirtd", path=DAEMON_PATH),
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
    deadline = time.monotonic() + START_TIMEOUT_S
    while not listening(host.socket_path):
        status = host._daemon.poll()
        if status is not None:
            raise TestBedError(
                f"host {host.name}: libvirtd exited with status {status}: {last_line(host)}"
            )
        if time.monotonic() > deadline:
            raise TestBedError(f"host {host.name}: libvirtd did not start in {START_TIMEOUT_S} s")
        time.sleep(0.01)
    host._connection = libvirt.open(host.uri)
    remember_capabilities(host)


def listening(path: Path) -> bool:
    """Whether a daemon listens on the Unix socket (libvirtd binds it well before)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return False
    return True


def stop(host: Host) -> None:
    """Kill the host's daemon, QEMUs and virtlogd, and reap them."""
    kill_user_processes(host.uid)
    if host._guardian is not None:
        host._guardian.release()
        host._guardian = None
    if host._daemon is not None:
        host._daemon.wait(timeout=START_TIMEOUT_S)
        stop_reaping(host.uid)


def last_line(host: Host) -> str:
    lines = host.log_path.read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"no output (see {host.log_path})"
