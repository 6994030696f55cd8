"""Reading the tool's files and writing files atomically (shell: does I/O).

Reads take regular files only, up to MAX_FILE_BYTES: a FIFO, a device such as
/dev/zero or a huge file is bad input, not a hang or a MemoryError.

Writes are atomic (``write_atomically``): a temporary file beside the target,
synced, renamed over it, and the directory synced, so a crash or a signal
never leaves a half-written profile, model or hook script behind. The
temporary file is removed on every error path; one left by a killed run
(``.NAME.PID.XXXX.tmp``, never a name a reader looks for) is removed by the
next write of the same file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat

from qemu_errata.core.document import parse_json
from qemu_errata.core.pool import PoolModel, model_from_json
from qemu_errata.core.profile import HostProfile, profile_from_json
from qemu_errata.errors import InputError

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, TypeAlias

    # A file's name: os and os.path take both (pathlib costs a short command its import).
    FilePath: TypeAlias = str | os.PathLike[str]

# Profiles and models are a few kilobytes, domain XML rarely more than a hundred;
# at this bound the worst JSON (a list of 2 million zeros) takes 0.5 s of CPU and 50 MB.
MAX_FILE_BYTES = 4 << 20
_TEMPORARY_SUFFIX = ".tmp"
_DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def read_bytes(path: FilePath, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit``); InputError naming it otherwise.

    Every reader of a file or a sysfs attribute in the command line goes through here.
    """
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None
    try:
        return _read_regular(path, descriptor, limit)
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None
    finally:
        os.close(descriptor)


def _read_regular(path: FilePath, descriptor: int, limit: int) -> bytes:
    info = os.fstat(descriptor)
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: not a regular file ({_file_kind(info.st_mode)})")
    chunks = []
    size = 0
    while chunk := os.read(descriptor, min(limit + 1 - size, 1 << 20)):
        size += len(chunk)
        if size > limit:
            raise InputError(f"{path}: larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _file_kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), "not a plain file")


def read_json(path: FilePath) -> Any:
    """The decoded JSON of ``path`` (strictly, see parse_json); InputError naming it otherwise."""
    try:
        text = read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    return parse_json(text, os.fspath(path))


def write_json(path: FilePath, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically; InputError naming the file otherwise."""
    content = (json.dumps(data, indent=2) + "\n").encode("utf-8")
    try:
        write_atomically(path, content)
    except OSError as error:
        raise InputError(f"{path}: cannot write: {error.strerror}") from None


def write_atomically(path: FilePath, content: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` by a file of ``content`` and ``mode``; OSError if that fails.

    Missing parent directories are created. The content goes to a temporary
    file beside ``path`` (created 0600, so not executable: a hook directory
    never runs it), gets its mode, is synced and renamed over ``path``, and the
    directory is synced: readers see the old file or the whole new one, never
    a partial or wrong-mode file, also after a power cut.
    """
    directory = os.path.dirname(path) or os.curdir
    os.makedirs(directory, exist_ok=True)
    prefix = _temporary_prefix(path)
    _remove_leftovers(directory, prefix)
    # Ctrl-C or SIGTERM landing between the temporary file's creation and the start of the
    # cleanup below would leave it behind: the signals wait until the file is whole and
    # renamed (or gone), then interrupt as usual.
    with _signals_deferred():
        _write_and_rename(path, directory, prefix, content, mode)
        _sync_directory(directory)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block ends, then deliver them as they came.

    Python runs signal handlers in the main thread only, so a block in another thread is
    never interrupted and needs nothing. Handlers, not the signal mask: the kernel gives a
    signal that the main thread blocks to any other thread (asyncio's child watchers), and
    the main thread would then run its handler all the same.
    """
    arrived: list[int] = []
    try:
        previous = {
            number: signal.signal(number, lambda number, frame: arrived.append(number))
            for number in _DEFERRED_SIGNALS
        }
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for signalled in arrived:
            signal.raise_signal(signalled)


def _write_and_rename(
    path: FilePath, directory: str, prefix: str, content: bytes, mode: int
) -> None:
    import tempfile  # noqa: PLC0415 (with random and shutil: reads pay nothing for writes)

    descriptor, temporary = tempfile.mkstemp(
        prefix=f"{prefix}{os.getpid()}.", suffix=_TEMPORARY_SUFFIX, dir=directory
    )
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _temporary_prefix(path: FilePath) -> str:
    return f".{os.path.basename(path)}."


def _remove_leftovers(directory: str, prefix: str) -> None:
    """Remove temporary files of ``prefix`` whose writing process is gone (a killed run)."""
    with os.scandir(directory) as entries:
        for entry in entries:
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(_TEMPORARY_SUFFIX)):
                continue
            # PID.RANDOM.tmp exactly (mkstemp's RANDOM has no dot): not another file's temporary
            writer, *rest = name[len(prefix) : -len(_TEMPORARY_SUFFIX)].split(".")
            if len(rest) == 1 and writer.isdigit() and not _process_exists(int(writer)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process (or a number that is not a PID): leave its file
    return True


def _sync_directory(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_profile(path: FilePath) -> HostProfile:
    return profile_from_json(read_json(path), os.fspath(path))


def read_model(path: FilePath) -> PoolModel:
    return model_from_json(read_json(path), os.fspath(path))
