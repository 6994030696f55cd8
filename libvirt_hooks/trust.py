"""Whether a file the hook reads or writes could have been planted by another user.

The hook runs as root (or as the libvirt daemon's user) and anyone who can
write its configuration, cached host profile or log can turn the guard off or
forge its record. Like sudo and sshd's StrictModes, every file, and every
directory on the way to it (symbolic links resolved one by one, each link's
directory checked too), must belong to root or to the hook's own user and be
writable by no one else. A directory that others may write is accepted only
with the sticky bit (``/tmp``): there, no one can rename or replace an entry
they do not own, and the entry itself is checked. A symbolic link is checked like
the file it names: once any directory on the way is writable by others, a link
must belong to root or the hook's user too (another user's link in ``/tmp`` could
point anywhere, and Linux's protected_symlinks is a setting, not a promise).
"""

from __future__ import annotations

import os
import stat

from qemu_errata.errors import ConfigError

_MAX_LINKS = 40  # what Linux follows in one path (ELOOP past it)
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def problem(status: os.stat_result) -> str | None:
    """Why a file or directory with this status is not to be trusted; None: it is."""
    if status.st_uid not in (0, os.geteuid()):
        return f"is owned by uid {status.st_uid}, not by root or the hook's user"
    if status.st_mode & _OTHERS_WRITE and not (
        stat.S_ISDIR(status.st_mode) and status.st_mode & stat.S_ISVTX
    ):
        return f"is writable by other users (mode {stat.S_IMODE(status.st_mode):04o})"
    return None


def check_path(path: str, what: str) -> str:
    """Check every directory leading to ``path`` and ``path`` itself (if it exists).

    ``what`` names the file in the error (``hook configuration``, ``host_profile``).
    Returns the path with its links resolved. ConfigError naming the file at fault.
    """
    return _walk(os.path.abspath(path), what, _MAX_LINKS)[0]


def _walk(path: str, what: str, links: int) -> tuple[str, int]:
    """The path with its links resolved, and how many more links may be followed."""
    parts = [name for name in path.split("/") if name not in ("", ".")]
    current = "/"
    shared = _check(current, what, path)  # some directory on the way is writable by others
    for index, name in enumerate(parts):
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        try:
            status = os.lstat(candidate)
        except FileNotFoundError:  # the rest does not exist: nothing more to check
            return os.path.join(candidate, *parts[index + 1 :]), links
        except OSError as error:
            raise ConfigError(
                f"{what} {path}: cannot check {candidate}: {error.strerror}"
            ) from None
        if stat.S_ISLNK(status.st_mode):  # its directory was checked: resolve and check on
            if shared and status.st_uid not in (0, os.geteuid()):
                raise ConfigError(
                    f"{what} {path}: {candidate} is a symbolic link owned by uid "
                    f"{status.st_uid} in a directory other users can write"
                )
            if links == 0:
                raise ConfigError(f"{what} {path}: too many symbolic links")
            current, links = _walk(os.path.join(current, os.readlink(candidate)), what, links - 1)
            shared = True  # the link's own walk checked its way; stay strict after it
            continue
        _refuse_if(problem(status), candidate, what, path)
        shared |= bool(status.st_mode & _OTHERS_WRITE)
        current = candidate
    return current, links


def _check(directory: str, what: str, path: str) -> bool:
    """Refuse an untrusted ``directory``; whether others may write it (sticky)."""
    try:
        status = os.lstat(directory)
    except OSError as error:
        raise ConfigError(f"{what} {path}: cannot check {directory}: {error.strerror}") from None
    _refuse_if(problem(status), directory, what, path)
    return bool(status.st_mode & _OTHERS_WRITE)


def _refuse_if(reason: str | None, culprit: str, what: str, path: str) -> None:
    if reason is None:
        return
    via = "" if culprit == path else f": {culprit}"
    raise ConfigError(f"{what} {path}{via} {reason}")


def read_trusted(path: str, what: str, limit: int) -> bytes:
    """The content of the regular file ``path``, checked as above; at most ``limit`` bytes.

    Opened without blocking (a FIFO planted by root by mistake does not hang
    the hook) and checked again on the open descriptor, so a swap between the
    check and the open is caught. Error messages never quote the content.
    """
    check_path(path, what)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as error:
        raise ConfigError(f"{what} {path}: cannot read: {error.strerror}") from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise ConfigError(f"{what} {path}: not a regular file")
        _refuse_if(problem(status), path, what, path)
        if status.st_size > limit:
            raise ConfigError(f"{what} {path}: larger than {limit} bytes")
        content = b""
        while chunk := os.read(descriptor, limit + 1 - len(content)):
            content += chunk
            if len(content) > limit:
                break
        if len(content) > limit:
            raise ConfigError(f"{what} {path}: larger than {limit} bytes")
        return content
    except OSError as error:
        raise ConfigError(f"{what} {path}: cannot read: {error.strerror}") from None
    finally:
        os.close(descriptor)
