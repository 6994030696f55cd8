"""What a person sees while a nested host boots (a warm boot under TCG takes tens of seconds).

On a terminal, one line kept up to date: the stage and the seconds so far,
erased when the boot ends. With ``--verbose``, a line per step instead: the
image, the QEMU command, the kernel's console as it comes, when the command
starts inside and when it ends. Otherwise (output to a file or a pipe) nothing:
the command's own output and the closing line say what happened.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import TextIO

from qemu_errata.nested.guest import ENDED_MARK, STARTED_MARK

PREFIX = "qemu-errata nested: "
_ERASE_LINE = "\r\033[K"


class BootProgress:
    """A BootWatcher (nested.boot) that writes to ``stream``, a terminal or with ``verbose``."""

    def __init__(self, stream: TextIO, host: str, command: str, *, verbose: bool) -> None:
        self.stream = stream
        self.host = host
        self.command = command
        self.verbose = verbose
        self.stage = f"booting {host} (QEMU TCG)"
        self.shown = ""

    def image(self, described: str) -> None:
        self._say(f"image: {described}")

    def starting(self, command: Sequence[str]) -> None:
        self._say(f"QEMU: {shlex.join(command)}")
        self._say(self.stage)

    def tick(self, seconds: float, console_lines: Sequence[str]) -> None:
        for line in console_lines:
            if line.strip() == STARTED_MARK:
                self._stage(seconds, f"running qemu-errata {self.command} on {self.host}")
            elif line.strip() == ENDED_MARK:
                self._stage(seconds, f"qemu-errata {self.command} ended; {self.host} powers off")
            else:
                self._say(f"console: {line}")
        if not self.verbose:
            self._show(f"{PREFIX}{self.stage}... {seconds:.0f} s")

    def stopped(self) -> None:
        if self.shown:
            self.stream.write(_ERASE_LINE)
            self.stream.flush()
            self.shown = ""

    def _stage(self, seconds: float, stage: str) -> None:
        self.stage = stage
        self._say(f"{seconds:.1f} s: {stage}")

    def _say(self, line: str) -> None:
        if self.verbose:
            print(f"{PREFIX}{line}", file=self.stream, flush=True)

    def _show(self, line: str) -> None:
        if line != self.shown:
            self.stream.write(f"\r{line}\033[K")
            self.stream.flush()
            self.shown = line
