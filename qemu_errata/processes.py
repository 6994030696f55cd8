"""Child processes that die with their parent, and temporary directories that go with it.

Every command that starts QEMU, libvirtd or a helper tool starts it here, so
that no way of ending the command (an exception, Ctrl-C, SIGTERM, even
SIGKILL) leaves a process or a directory of sockets behind:

- a child gets its own session (so a terminal's Ctrl-C reaches only us, and
  we stop it in order) and the parent-death signal SIGKILL (Linux
  ``prctl(PR_SET_PDEATHSIG)``), so the kernel kills it when we die;
- a temporary directory has a Guardian: a tiny ``sh`` in its own session
  that waits for the end of a pipe only we hold open, then removes the
  directory. Whatever ends our process closes the pipe. The test bed's
  guardians kill what its libvirtd started (QEMUs leave libvirtd's tree).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


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
    import asyncio  # noqa: PLC0415 (a fifth of a short command's start-up: only when used)

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


class Guardian:
    """A tiny ``sh`` that runs ``script`` once this process ends, however it ends.

    It waits for the end of a pipe only this process holds open (closed by
    ``release()``, by exit, by any signal), in its own session so that
    neither Ctrl-C nor a hangup stops it early. ``options`` go to Popen
    (e.g. ``user=`` to run the script as another user).
    """

    def __init__(self, script: str, *arguments: str, **options: Any) -> None:
        read_end, self._write_end = os.pipe2(os.O_CLOEXEC)
        try:
            self._process = subprocess.Popen(
                ["sh", "-c", f"cat >/dev/null; {script}", "sh", *arguments],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                **options,
            )
        except BaseException:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)

    def release(self) -> None:
        """Run the script now and wait for it."""
        if self._write_end >= 0:
            os.close(self._write_end)
            self._write_end = -1
        self._process.wait()


@contextlib.contextmanager
def temporary_directory(prefix: str, directory: Path | None = None) -> Iterator[Path]:
    """A new private directory, removed when the block ends or when this process dies."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
    try:
        guardian = Guardian('exec rm -rf -- "$1"', str(path))
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        guardian.release()
