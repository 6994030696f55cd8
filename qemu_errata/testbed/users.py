"""The test bed's users and their processes (shell; see ``qemu_errata.testbed.bed``).

Each simulated host runs as a dedicated system user ``qe-tb-<n>``, created
if missing and reused afterwards. A user serves one live test bed at a time:
``take_user`` holds a lock (an abstract Unix socket, which the kernel frees
when its process ends, however it ends), so test beds in several processes
never share a user, and everything running as a locked user is ours to kill.

libvirt daemonizes QEMU, so a QEMU that exits is reaped by the machine's
init, and libvirt waits for that before a migration, save or destroy
returns: 2 s each where init reaps lazily. ``reap_orphans_of`` makes this
process a child subreaper and reaps the exited processes of a user at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import pwd
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from qemu_errata.errors import TestBedError

USER_PREFIX = "qe-tb-"
MAX_USERS = 64

_KILL_TIMEOUT_S = 10.0
_REAP_INTERVAL_S = 0.02
_PR_SET_CHILD_SUBREAPER = 36
_USERADD_BUSY = 10  # useradd's exit status while another useradd holds /etc/passwd


@dataclass(frozen=True)
class HostUser:
    """The unprivileged user a simulated host's daemon and QEMU run as."""

    name: str
    uid: int
    gid: int


def take_user() -> tuple[HostUser, socket.socket]:
    """The first free ``qe-tb-<n>`` (created if missing), and the lock that holds it."""
    for number in range(MAX_USERS):
        name = f"{USER_PREFIX}{number}"
        lock = lock_user(name)
        if lock is not None:
            return ensure_user(name), lock
    raise TestBedError(f"all {MAX_USERS} test-bed users are in use")


def lock_user(name: str) -> socket.socket | None:
    """Hold test-bed user ``name`` while the returned socket is open; None if taken."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0qemu-errata-testbed/{name}")
    except OSError as error:
        lock.close()
        if error.errno == errno.EADDRINUSE:
            return None
        raise
    return lock


def ensure_user(name: str) -> HostUser:
    """The system user ``name``, created (no home, no login shell) if missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        _useradd(name)
        entry = pwd.getpwnam(name)
    return HostUser(name, entry.pw_uid, entry.pw_gid)


def _useradd(name: str) -> None:
    command = [
        "useradd",
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        name,
    ]
    for _ in range(5):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != _USERADD_BUSY:
            break
        time.sleep(0.2)
    if result.returncode != 0:
        raise TestBedError(f"useradd {name}: {result.stderr.strip() or result.returncode}")


def user_processes(uid: int) -> list[int]:
    """Live (not zombie) processes whose real user is ``uid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            status = _uid_and_state(int(entry.name))
            if status is not None and status[0] == uid and status[1] != "Z":
                found.append(int(entry.name))
    return found


def kill_user_processes(uid: int) -> None:
    """SIGKILL every process of a test-bed user (daemon, QEMU, virtlogd) and wait."""
    deadline = time.monotonic() + _KILL_TIMEOUT_S
    while pids := user_processes(uid):
        if time.monotonic() > deadline:
            raise TestBedError(f"processes of uid {uid} survive SIGKILL: {pids}")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(_REAP_INTERVAL_S)


def _uid_and_state(pid: int) -> tuple[int, str] | None:
    """Real uid and state letter of a process; None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["Uid"].split()[0]), fields["State"].split()[0]


# Orphan reaping: one thread per process while any user is registered.
_reaping_lock = threading.Lock()
_spared: dict[int, int] = {}  # uid -> our child (the daemon) that its Popen waits for
_reaper: list[threading.Thread] = []  # the running reaper thread, if any


def reap_orphans_of(uid: int, spare: int) -> None:
    """Reap at once the exited processes of ``uid`` that end up our children, but ``spare``."""
    with _reaping_lock:
        if not _spared:
            _become_subreaper()
        _spared[uid] = spare
        if not _reaper:
            _reaper.append(threading.Thread(target=_reap_loop, name="testbed-reaper", daemon=True))
            _reaper[0].start()


def stop_reaping(uid: int) -> None:
    """Reap what ``uid`` left (after kill_user_processes), then stop watching it."""
    with _reaping_lock:
        _reap_once()
        _spared.pop(uid, None)


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise TestBedError(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(error)}")


def _reap_loop() -> None:
    while True:
        with _reaping_lock:
            if not _spared:
                _reaper.clear()  # under the lock: the next reap_orphans_of starts a new one
                return
            _reap_once()
        time.sleep(_REAP_INTERVAL_S)


def _reap_once() -> None:
    for pid in _children() - set(_spared.values()):
        status = _uid_and_state(pid)
        if status is not None and status[0] in _spared and status[1] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def _children() -> set[int]:
    children: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            children.update(int(pid) for pid in (task / "children").read_text().split())
    return children
