"""Where the hook records its decisions: syslog, or a file; every write bounded in time.

A warning (start_policy warn) also goes to the VM's own libvirt log, the one its
daemon keeps (``virsh`` users read it; a hook's stderr is shown only on failure).

libvirt waits for the hook, so a log write must never hang it: syslog is sent by
this module over a datagram socket with a timeout (libc's ``syslog()`` blocks
while ``/dev/log``'s reader is stuck, and retries past a signal), and the caller's
alarm covers the whole write either way. Text is encoded so that no ``HOME``, VM
name or path (undecodable bytes included) makes a line unwritable.
"""

from __future__ import annotations

import _socket
import errno
import os
import stat
import time

from libvirt_hooks import trust
from qemu_errata.errors import ConfigError

LOG_IDENT = "qemu-errata-hook"
SYSLOG_SOCKET = "/dev/log"
SEND_SECONDS = 1.0  # a syslog reader that takes longer is stuck: the decision stands without it
LOG_DAEMON = 3 << 3
LOG_ERR, LOG_WARNING, LOG_INFO = 3, 4, 6
# libvirt's per-domain logs (NAME.log): the system daemon's, and a session daemon's
# under its XDG_CACHE_HOME (default $HOME/.cache), as libvirt's own paths are chosen.
SYSTEM_DOMAIN_LOGS = "/var/log/libvirt/qemu"
SESSION_DOMAIN_LOGS = os.path.join("libvirt", "qemu", "log")
LIBVIRT_DAEMONS = (b"libvirtd", b"virtqemud")  # the daemons that run qemu hooks
MAX_ENVIRON = 1 << 20


def encoded(line: str) -> bytes:
    """``line`` as UTF-8, undecodable bytes (surrogate escapes) shown as escapes, never an error."""
    return line.encode("utf-8", "backslashreplace")


def send_to_syslog(priority: int, line: str) -> None:
    """One message to the local syslog as libc formats it; OSError (a timeout too) if not sent."""
    stamp = time.strftime("%b %e %H:%M:%S")
    message = encoded(f"<{LOG_DAEMON | priority}>{stamp} {LOG_IDENT}[{os.getpid()}]: {line}")
    for kind, ending in ((_socket.SOCK_DGRAM, b""), (_socket.SOCK_STREAM, b"\0")):
        sender = _socket.socket(_socket.AF_UNIX, kind | _socket.SOCK_CLOEXEC)
        try:
            sender.settimeout(SEND_SECONDS)
            try:
                sender.connect(SYSLOG_SOCKET)
            except OSError as error:
                if error.errno == errno.EPROTOTYPE:  # a stream socket: send as libc does
                    continue
                raise
            sender.sendall(message + ending)
            return
        finally:
            sender.close()


def append_to_log(path: str, data: bytes) -> None:
    """Append ``data`` to the log without following a link or writing a file others own."""
    descriptor = _open_log(path, os.O_CREAT)
    try:
        os.write(descriptor, data)
    finally:
        os.close(descriptor)


def log_takes_lines(path: str) -> str:
    """Whether append_to_log, run as this user, could write to ``path``, found without
    creating or changing it: what was found, for people; OSError if it could not.

    A missing log is left missing: created here it would belong to whoever runs the check,
    not to the user the hook runs as, so only its directory is asked whether it admits it.
    """
    try:
        os.close(_open_log(path, 0))
    except FileNotFoundError:
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            raise OSError(errno.ENOENT, f"missing, and so is its directory {directory}") from None
        if not os.access(directory, os.W_OK | os.X_OK, effective_ids=True):
            raise OSError(
                errno.EACCES,
                f"missing, and uid {os.geteuid()} cannot create files in {directory}",
            ) from None
        return f"missing: the hook creates it on its first line (uid {os.geteuid()} may)"
    return "exists; opened for appending, nothing written"


def _open_log(path: str, create: int) -> int:
    """The log opened for appending (``create``: os.O_CREAT or 0), never through a link and
    only if it is a regular file root or the hook's user owns."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    descriptor = os.open(path, flags | os.O_NOCTTY | create, 0o640)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or trust.problem(status) is not None:
            raise OSError(
                f"not a regular file of root or the hook's user (mode {status.st_mode:o})"
            )
    except OSError:
        os.close(descriptor)
        raise
    return descriptor


def domain_log_path(domain: str) -> tuple[str | None, str]:
    """The libvirt log of VM ``domain`` kept by the daemon that runs this hook (our parent,
    which libvirt's hook call forks and execs), or None and why there is none.

    The system daemon (root) keeps it in SYSTEM_DOMAIN_LOGS, a session daemon under its
    own XDG_CACHE_HOME, else its HOME's ``.cache`` (read from its environment: libvirt
    passes hooks HOME alone); a name that is no plain file name has none.
    """
    if not domain or "/" in domain or domain in (".", ".."):
        return None, f"VM {domain!r} has no file name"
    environment = _daemon_environment()
    if environment is None:
        return None, "the hook was not run by a libvirt daemon"
    if os.geteuid() == 0:
        return os.path.join(SYSTEM_DOMAIN_LOGS, f"{domain}.log"), ""
    home = environment.get(b"HOME")
    cache = environment.get(b"XDG_CACHE_HOME") or (home and os.path.join(home, b".cache"))
    if not cache:
        return None, "the libvirt daemon has neither XDG_CACHE_HOME nor HOME"
    return os.path.join(os.fsdecode(cache), SESSION_DOMAIN_LOGS, f"{domain}.log"), ""


def _daemon_environment() -> dict[bytes, bytes] | None:
    """The environment of our parent if it is a libvirt daemon (None: it is not)."""
    parent = os.getppid()
    try:
        with open(f"/proc/{parent}/comm", "rb") as stream:
            if stream.read(64).strip() not in LIBVIRT_DAEMONS:
                return None
        with open(f"/proc/{parent}/environ", "rb") as stream:
            raw = stream.read(MAX_ENVIRON)
    except OSError:
        return None
    pairs = (entry.partition(b"=") for entry in raw.split(b"\0") if entry)
    return {key: value for key, _, value in pairs}


def write_domain_log(domain: str, line: str) -> str | None:
    """Append ``line`` (stamped as libvirt stamps its own) to VM ``domain``'s libvirt log,
    never through a link nor into a file or directory others could write; None, or why not."""
    path, why = domain_log_path(domain)
    if path is None:
        return f"not written to the VM's libvirt log: {why}"
    try:
        trust.check_path(os.path.dirname(path), "libvirt's domain log directory")
        stamp = time.strftime("%Y-%m-%d %H:%M:%S%z", time.gmtime())
        append_to_log(path, encoded(f"{stamp}: {line}\n"))
    except OSError as error:
        return f"not written to {path}: {error.strerror or error}"
    except ConfigError as error:
        return f"not written to {path}: {error}"
    return None
