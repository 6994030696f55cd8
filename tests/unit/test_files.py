"""Reading only bounded regular files, and writing atomically without leftovers."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from qemu_errata import files
from qemu_errata.errors import InputError


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (os.mkfifo, "not a regular file (a FIFO)"),
        (lambda p: p.mkdir(), "not a regular file (a directory)"),
        (lambda p: p.symlink_to("/dev/zero"), "not a regular file (a character device)"),
        (lambda p: None, "cannot read: No such file or directory"),
    ],
)
def test_only_regular_files_are_read(make: object, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    make(path)  # type: ignore[operator]
    # Should a reader wait on the FIFO (it must not), a writer comes by and ends the wait.
    unblock = threading.Timer(5, _open_and_close_for_writing, [path])
    unblock.start()
    try:
        with pytest.raises(InputError) as refused:
            files.read_json(path)
    finally:
        unblock.cancel()
    assert str(refused.value) == f"{path}: {problem}"


def _open_and_close_for_writing(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_a_file_past_the_size_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as stream:
        stream.truncate(files.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(InputError, match=f"larger than {files.MAX_FILE_BYTES} bytes"):
        files.read_bytes(path)


def test_invalid_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"host": "\xe9"}')
    with pytest.raises(InputError, match=r"latin1.json: not UTF-8 text$"):
        files.read_json(path)


def test_write_creates_missing_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "var/lib/qemu-errata/host.json"
    files.write_json(path, {"a": 1})
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert os.listdir(path.parent) == ["host.json"]


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.json"
    path.write_text("old")

    def interrupted(descriptor: int) -> None:
        raise KeyboardInterrupt  # what Ctrl-C or SIGTERM (see commands/main.py) raises

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.write_atomically(path, b"new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.json"]


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_a_write_waits_until_the_file_is_whole(
    number: signal.Signals, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real signal, sent while the temporary file exists: it used to raise there (Ctrl-C
    # in mkstemp left ``.model.json.PID.XXXX.tmp``); now it interrupts after the rename.
    path = tmp_path / "model.json"
    real_fsync = os.fsync

    def signalled_fsync(descriptor: int) -> None:
        os.kill(os.getpid(), number)
        real_fsync(descriptor)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", signalled_fsync)
    previous = signal.signal(number, interrupt)
    # Another thread, as asyncio's child watchers are: the kernel may hand it the signal.
    done = threading.Event()
    bystander = threading.Thread(target=done.wait)
    bystander.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            files.write_atomically(path, b"new")
    finally:
        signal.signal(number, previous)
        done.set()
        bystander.join()
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["model.json"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    leftover = tmp_path / f".model.json.{dead.stdout.strip()}.abcd1234.tmp"
    leftover.write_text("half")
    alive = tmp_path / f".model.json.{os.getppid()}.abcd1234.tmp"  # a writer still at work
    alive.write_text("busy")
    other = tmp_path / f".model.json.5.{os.getppid()}.abcd1234.tmp"  # writing model.json.5
    other.write_text("busy")
    files.write_json(tmp_path / "model.json", {})
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, other.name, "model.json"])
