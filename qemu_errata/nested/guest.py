"""Runs inside the nested host: the request of this boot, and the result back out.

Started by the initramfs's /init with the nested host's own Python, so this
module and everything the requested command imports may use the standard
library only. The request (:data:`REQUEST`) came in with the per-run archive;
the result, one JSON document with the exit status, the output streams and
the requested output files (base64), goes to the virtio serial port named
:data:`RESULT_PORT`, which QEMU writes to a file on the outer machine.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

REQUEST = Path("/qemu-errata/request.json")
RESULT_PORT = "qemu-errata.result"
RESULT_FORMAT = "qemu-errata/nested-result/1"
# Written to the console (/init's standard output), which the outer machine watches
# to tell how far the run is: the userland is up and the command starts; it ended.
STARTED_MARK = "qemu-errata-nested: command started"
ENDED_MARK = "qemu-errata-nested: command ended"


def run_request(request: dict[str, Any]) -> dict[str, Any]:
    """Run ``qemu-errata`` with the request's arguments and collect what it produced."""
    socket.sethostname(request["hostname"])
    completed = subprocess.run(
        [sys.executable, "-m", "qemu_errata", *request["argv"]],
        capture_output=True,
        cwd="/root",
        check=False,
    )
    files = {
        name: _encode(Path(name).read_bytes())
        for name in request["outputs"]
        if Path(name).is_file()
    }
    return {
        "format": RESULT_FORMAT,
        "exit_status": completed.returncode,
        "stdout": _encode(completed.stdout),
        "stderr": _encode(completed.stderr),
        "files": files,
        "kernel_release": os.uname().release,
    }


def result_port(name: str = RESULT_PORT) -> Path:
    """The device of the virtio serial port QEMU named ``name``."""
    for port in sorted(Path("/sys/class/virtio-ports").glob("*")):
        if (port / "name").read_text().strip() == name:
            return Path("/dev") / port.name
    raise FileNotFoundError(f"no virtio serial port named {name}")


def _encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def main() -> None:
    print(STARTED_MARK, flush=True)
    result = run_request(json.loads(REQUEST.read_text("utf-8")))
    print(ENDED_MARK, flush=True)
    with result_port().open("wb") as port:
        port.write(json.dumps(result).encode())


if __name__ == "__main__":
    main()
