"""Runs inside a fleet host: answers the outer machine's requests, one at a time.

A fleet host (:mod:`.fleet`) boots with this as its /init's program instead
of :mod:`.guest`'s one request. Requests and answers are JSON lines on the
virtio serial port :data:`CONTROL_PORT`: ``run`` a command (argv, stdin,
environment, timeout: status and output streams back), ``spawn`` one in the
background (its output to a file), ``write`` or ``read`` a file, ``qmp``: one
command to a QEMU's QMP socket (the connection is kept; events are dropped).
The first line out says the host is ready and names its virtio serial
ports. Standard library only (the nested host's Python).
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, BinaryIO

CONTROL_PORT = "qemu-errata.control"
AGENT_FORMAT = "qemu-errata/fleet-agent/1"
_QMP_SECONDS = 30.0


def ports() -> dict[str, str]:
    """Every virtio serial port QEMU named, by name: its device."""
    found = {}
    for port in sorted(Path("/sys/class/virtio-ports").glob("*")):
        name = (port / "name").read_text().strip()
        if name:
            found[name] = f"/dev/{port.name}"
    return found


class _Qmp:
    """One QMP session on a unix socket, past its negotiation."""

    def __init__(self, path: str) -> None:
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.settimeout(_QMP_SECONDS)
        self._socket.connect(path)
        self._stream = self._socket.makefile("rb")
        self._stream.readline()
        self.command({"execute": "qmp_capabilities"})

    def command(self, request: dict[str, Any]) -> dict[str, Any]:
        self._socket.sendall(json.dumps(request).encode() + b"\n")
        while True:
            line = self._stream.readline()
            if not line:
                raise ConnectionError("QEMU closed its QMP connection")
            answer: dict[str, Any] = json.loads(line)
            if "return" in answer or "error" in answer:
                return answer

    def close(self) -> None:
        self._stream.close()
        self._socket.close()


class Agent:
    """The request handlers; ``_sessions`` keeps one QMP session per socket."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Qmp] = {}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, "op_" + str(request.get("op")), None)
        if handler is None:
            return {"error": f"unknown op {request.get('op')!r}"}
        try:
            answer: dict[str, Any] = handler(request)
        except (OSError, ValueError, subprocess.SubprocessError) as error:
            return {"error": f"{type(error).__name__}: {error}"}
        return answer

    def op_run(self, request: dict[str, Any]) -> dict[str, Any]:
        started = time.monotonic()
        try:
            completed = subprocess.run(
                request["argv"],
                input=base64.b64decode(request.get("stdin", "")),
                capture_output=True,
                env=request.get("env"),
                timeout=request.get("timeout"),
                cwd="/root",
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            return {"error": f"timed out after {expired.timeout} s"}
        return {
            "status": completed.returncode,
            "stdout": _encode(completed.stdout),
            "stderr": _encode(completed.stderr),
            "seconds": round(time.monotonic() - started, 3),
        }

    def op_spawn(self, request: dict[str, Any]) -> dict[str, Any]:
        with open(request["output"], "wb") as output:
            process = subprocess.Popen(
                request["argv"],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
                cwd="/root",
            )
        return {"pid": process.pid}

    def op_write(self, request: dict[str, Any]) -> dict[str, Any]:
        path = Path(request["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(request["data"]))
        path.chmod(int(request.get("mode", 0o644)))
        return {}

    def op_read(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"data": _encode(Path(request["path"]).read_bytes())}

    def op_qmp(self, request: dict[str, Any]) -> dict[str, Any]:
        path = request["socket"]
        if path not in self._sessions:
            self._sessions[path] = _Qmp(path)
        command = {"execute": request["execute"]}
        if request.get("arguments"):
            command["arguments"] = request["arguments"]
        try:
            return self._sessions[path].command(command)
        except (OSError, ValueError):
            self._sessions.pop(path).close()
            raise


def _encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer the requests read from ``requests`` until the outer machine goes away."""
    agent = Agent()
    hello = {
        "format": AGENT_FORMAT,
        "ready": True,
        "kernel_release": os.uname().release,
        "ports": ports(),
    }
    _send(answers, hello)
    for line in requests:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        answer = agent.handle(request)
        answer["id"] = request.get("id")
        _send(answers, answer)


def _send(answers: BinaryIO, message: dict[str, Any]) -> None:
    answers.write(json.dumps(message).encode() + b"\n")
    answers.flush()


def main() -> None:
    # virtio_console lets one process open a port once: one file, read buffered.
    with open(ports()[CONTROL_PORT], "r+b", buffering=0) as port:
        serve(io.BufferedReader(port), io.BufferedWriter(port))


if __name__ == "__main__":
    main()
