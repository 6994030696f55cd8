"""Child processes that die with their parent, and temporary directories that go with it.

Every command that starts QEMU, libvirtd or a helper tool starts it here, so
that no way of ending the command (an exception, Ctrl-C, SIGTERM, even
SIGKILL) leaves a process or a directory of sockets behind:

- a child gets its own session (so a terminal's Ctrl-C reaches only us, and
  we stop it in order) and the parent-death signal SIGKILL (Linux
  ``prctl(PR_SET_PDEATHSIG)``), so the kernel kills it when we die;
- a temporary directory has a guardian: a tiny ``sh`` in its own session
  that waits for the end of a pipe only we hold open, then removes the
  directory. Whatever ends our process closes the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
# Reads until our end of the pipe closes, however we ended, then removes the directory.
_GUARDIAN = 'cat >/dev/null; exec rm -rf -- "$1"'


# preexec_fn is safe here although the test bed has a thread: the function
# takes no lock (a ctypes call of an already loaded libc, getppid, _exit).


def start(command: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` of a child that dies with us (see the module docstring)."""
    process: subprocess.Popen[bytes] = subprocess.Popen(
        command,
        start_new_session=True,
        preexec_fn=_dies_with(os.getpid()),  # noqa: PLW1509
        **options,
    )
    return process


def run(command: Sequence[str], *, check: bool, **options: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` of a child that dies with us."""
    return subprocess.run(
        command,
        check=check,
        start_new_session=True,
        preexec_fn=_dies_with(os.getpid()),
        **options,
    )


async def start_async(program: str, *arguments: str, **options: Any) -> asyncio.subprocess.Process:
    """``asyncio.create_subprocess_exec`` of a child that dies with us."""
    return await asyncio.create_subprocess_exec(
        program,
        *arguments,
        start_new_session=True,
        preexec_fn=_dies_with(os.getpid()),
        **options,
    )


def _dies_with(parent: int) -> Callable[[], None]:
    def in_child() -> None:
        # Between fork and exec, after any change of user (which would clear it).
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os._exit(1)

    return in_child


@contextlib.contextmanager
def temporary_directory(prefix: str, directory: Path | None = None) -> Iterator[Path]:
    """A new private directory, removed when the block ends or when this process dies."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        guardian = subprocess.Popen(
            ["sh", "-c", _GUARDIAN, "sh", str(path)],
            stdin=read_end,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # neither Ctrl-C nor a hangup stops it early
        )
    except BaseException:
        os.close(write_end)
        shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        os.close(read_end)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(write_end)
        guardian.wait()
