"""A QMP client of the standard library alone, for QEMUs we start ourselves (shell).

The nested host has Python's standard library only, no ``qemu.qmp``; this is
enough to ask a QEMU we started: we listen on a unix socket, QEMU
(``-qmp unix:PATH``) connects, and commands go one at a time. QMP is one
JSON object per line; events between a command and its answer are skipped.
Every read is bounded in time. It is a ``qmp.Monitor``.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

from qemu_errata.errors import QmpCommandError, QmpError

TIMEOUT_SECONDS = 10.0
_POLL_SECONDS = 0.2


def listen(path: str) -> socket.socket:
    """A unix socket listening at ``path`` for QEMU's QMP connection."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    return listener


class QmpConnection:
    """One QMP session, past its capabilities negotiation."""

    def __init__(self, connection: socket.socket, name: str) -> None:
        self._socket = connection
        self._stream = connection.makefile("rb")
        self._name = name
        self._ids = itertools.count()

    @classmethod
    def accept(
        cls, listener: socket.socket, name: str, timeout: float, alive: Callable[[], bool]
    ) -> QmpConnection:
        """The session of the QEMU connecting to ``listener``; QmpError when it has not
        within ``timeout`` seconds or is no longer ``alive``."""
        listener.settimeout(_POLL_SECONDS)
        deadline = time.monotonic() + timeout
        while True:
            try:
                connection, _ = listener.accept()
                break
            except TimeoutError:
                if not alive() or time.monotonic() > deadline:
                    raise QmpError(f"{name}: did not connect over QMP") from None
        connection.settimeout(TIMEOUT_SECONDS)
        session = cls(connection, name)
        greeting = session._message()
        if "QMP" not in greeting:
            raise QmpError(f"{name}: not a QMP greeting: {greeting!r}")
        session.command("qmp_capabilities")
        return session

    def command(self, name: str, arguments: Mapping[str, Any] | None = None) -> Any:
        """Run ``name``; its ``return`` value, QmpCommandError for QEMU's error answer."""
        request: dict[str, Any] = {"execute": name, "id": next(self._ids)}
        if arguments:
            request["arguments"] = dict(arguments)
        try:
            self._socket.sendall(json.dumps(request).encode() + b"\n")
        except OSError as error:
            raise QmpError(f"{self._name}: QMP command {name} failed: {error}") from None
        while True:
            answer = self._message()
            if "error" in answer:
                raise QmpCommandError(f"{name}: {answer['error'].get('desc', answer['error'])}")
            if "return" in answer:
                return answer["return"]

    async def execute(self, command: str, arguments: Mapping[str, Any] | None = None) -> Any:
        return self.command(command, arguments)

    def close(self) -> None:
        self._stream.close()
        self._socket.close()

    def _message(self) -> dict[str, Any]:
        try:
            line = self._stream.readline()
        except OSError as error:
            raise QmpError(f"{self._name}: no QMP answer: {error}") from None
        if not line:
            raise QmpError(f"{self._name}: closed its QMP connection")
        try:
            message = json.loads(line)
        except ValueError:
            raise QmpError(f"{self._name}: not QMP: {line[:80]!r}") from None
        if not isinstance(message, dict):
            raise QmpError(f"{self._name}: not QMP: {line[:80]!r}")
        return message
