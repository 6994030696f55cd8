"""Where the hook records its decisions: syslog, or a file; every write bounded in time.

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

LOG_IDENT = "qemu-errata-hook"
SYSLOG_SOCKET = "/dev/log"
SEND_SECONDS = 1.0  # a syslog reader that takes longer is stuck: the decision stands without it
LOG_DAEMON = 3 << 3
LOG_ERR, LOG_WARNING, LOG_INFO = 3, 4, 6


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
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    descriptor = os.open(path, flags | os.O_NOCTTY, 0o640)
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or trust.problem(status) is not None:
            raise OSError(
                f"not a regular file of root or the hook's user (mode {status.st_mode:o})"
            )
        os.write(descriptor, data)
    finally:
        os.close(descriptor)
