"""Writing "newc" cpio archives, the format Linux unpacks as an initramfs.

Linux accepts several archives concatenated in one initrd and unpacks them in
order, later entries replacing earlier ones: the nested host's base image is
one archive, and each run appends a small one holding the package, the
request and the input files; guest-view's guest gets one holding busybox. Written
here rather than with cpio(1) so that entries need not exist on disk and the
archive is the same on every machine.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"
# Padding the whole archive to this size keeps a concatenated archive aligned.
_ARCHIVE_ALIGNMENT = 512


class CpioWriter:
    """Appends entries to a newc archive on ``stream``; ``close`` writes the trailer.

    Entry names are relative paths without a leading slash ("usr/bin/x").
    Every entry is owned by root with one link, so the archive does not
    depend on who builds it.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._inode = 0
        self._written = 0

    def directory(self, name: str, mode: int = 0o755, mtime: int = 0) -> None:
        self._entry(name, stat.S_IFDIR | mode, b"", mtime)

    def file(self, name: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> None:
        self._entry(name, stat.S_IFREG | mode, data, mtime)

    def symlink(self, name: str, target: str, mtime: int = 0) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, os.fsencode(target), mtime)

    def character_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, b"", 0, rdev=(major, minor))

    def tree(self, root: Path, prefix: str = "") -> None:
        """Add everything under ``root`` (not root itself) below ``prefix``.

        Directories come before their contents; symbolic links are kept as
        links; modes and modification times are kept.
        """
        for directory, subdirectories, files in os.walk(root):
            subdirectories.sort()
            base = Path(directory)
            for entry in [*subdirectories, *sorted(files)]:
                path = base / entry
                name = _join(prefix, path.relative_to(root).as_posix())
                info = path.lstat()
                mtime = int(info.st_mtime)
                if stat.S_ISLNK(info.st_mode):
                    self.symlink(name, os.readlink(path), mtime)
                elif stat.S_ISDIR(info.st_mode):
                    self.directory(name, stat.S_IMODE(info.st_mode), mtime)
                elif stat.S_ISREG(info.st_mode):
                    self.file(name, path.read_bytes(), stat.S_IMODE(info.st_mode), mtime)

    def close(self) -> None:
        """Write the trailer and pad the archive; the stream stays open."""
        self._entry(_TRAILER, 0, b"", 0, inode=0)
        self._write(b"\0" * (-self._written % _ARCHIVE_ALIGNMENT))

    def _entry(
        self,
        name: str,
        mode: int,
        data: bytes,
        mtime: int,
        *,
        rdev: tuple[int, int] = (0, 0),
        inode: int | None = None,
    ) -> None:
        if inode is None:
            self._inode += 1
            inode = self._inode
        encoded_name = os.fsencode(name) + b"\0"
        fields = (
            inode,
            mode,
            0,
            0,
            1,
            mtime,
            len(data),
            0,
            0,
            rdev[0],
            rdev[1],
            len(encoded_name),
            0,
        )
        header = _MAGIC + b"".join(b"%08x" % value for value in fields)
        self._write(header + encoded_name)
        self._write(b"\0" * (-self._written % 4))
        self._write(data)
        self._write(b"\0" * (-self._written % 4))

    def _write(self, data: bytes) -> None:
        self._stream.write(data)
        self._written += len(data)


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix else name
