"""Several nested arm64 KVM hosts at once, joined by private links, each driven live.

Each host is the nested runner's machine (:mod:`.boot`: Debian's arm64
kernel under QEMU TCG at EL2, so KVM works inside) with Debian's QEMU
(:mod:`.qemu_layer`) and the fleet guest's boot files (:mod:`.heartbeat`,
the 6.12 series' kernel Image) in its initramfs, and :mod:`.agent` as its
program: the outer machine drives it over a virtio serial port (run a
command, spawn one, read and write files, speak QMP to a QEMU inside).

The link: every pair of hosts shares one virtio serial port, a byte pipe
between the two QEMU processes over a unix socket in the fleet's private
directory (chardev ``socket``; one side listens, the other connects).
Nothing else is reachable: the hosts have no network device at all. Debian's
kernels build virtio-net as a module and the image carries no modules,
while virtio-console is built in; a migration stream needs only a byte pipe
(``exec:`` migration through the port's device). A host's *address* for a
peer is the device of their shared port (:meth:`FleetHost.link_to`).

Every QEMU is started through :mod:`qemu_errata.processes` (it dies with us,
even on SIGKILL) and the private directory is removed however we end.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qemu_errata import processes
from qemu_errata.cpio import CpioWriter
from qemu_errata.errors import BootError, InputError
from qemu_errata.nested.agent import AGENT_FORMAT, CONTROL_PORT
from qemu_errata.nested.boot import (
    QEMU,
    check_cpu_model,
    host_machine,
    host_name,
    write_packages_archive,
)
from qemu_errata.nested.heartbeat import guest_initramfs
from qemu_errata.nested.image import KERNELS, NestedImage, kernel_series, load_image
from qemu_errata.nested.qemu_layer import QemuLayer, load_layer

HOST_MEMORY_MIB = 1536
BOOT_SECONDS = 180.0
REQUEST_SECONDS = 120.0
GUEST_CONSOLE_PORT = "qemu-errata.guest-console"
LINK_PORT = "qemu-errata.link.{peer}"
# The fleet guest's boot files, in every host (a migration's destination is
# started with the same command line as its source).
GUEST_KERNEL = "/qemu-errata/guest/Image"
GUEST_INITRD = "/qemu-errata/guest/initrd.cpio"
GUEST_KERNEL_SERIES = "6.12"
FLEET_INIT = """\
#!/bin/sh
# /init of a qemu-errata fleet host: serve the outer machine's requests (agent.py).
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mkdir -p /run /var/log
/bin/busybox hostname "$(/bin/busybox cat /etc/hostname)"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PYTHONDONTWRITEBYTECODE=1
/usr/bin/python3.11 -m qemu_errata.nested.agent
/bin/busybox poweroff -f
"""
Progress = Callable[[str], None]


@dataclass(frozen=True)
class HostSpec:
    """A fleet host to boot: QEMU's CPU model and the Linux series."""

    cpu: str
    kernel: str

    @classmethod
    def parse(cls, text: str, option: str) -> HostSpec:
        """``CPU:KERNEL`` (``neoverse-n1:6.12``); InputError naming ``option`` otherwise."""
        cpu, colon, kernel = text.partition(":")
        if not (cpu and colon and kernel):
            raise InputError(f"{option} {text}: expected CPU:KERNEL (e.g. neoverse-n1:6.12)")
        if kernel not in KERNELS:
            known = ", ".join(KERNELS)
            raise InputError(f"{option} {text}: unknown kernel series {kernel} (known: {known})")
        return cls(cpu, kernel)


@dataclass(frozen=True)
class RunResult:
    """What a command run in a fleet host did."""

    status: int
    stdout: bytes
    stderr: bytes
    seconds: float


class FleetError(BootError):
    """A fleet host did not boot or stopped answering."""


@dataclass
class FleetHost:
    """One running host of the fleet, driven through its agent."""

    index: int
    spec: HostSpec
    image: NestedImage
    process: subprocess.Popen[bytes]
    directory: Path
    ports: dict[str, str] = field(default_factory=dict)
    kernel_release: str = ""
    _control: socket.socket | None = None
    _buffer: bytes = b""
    _ids: Iterator[int] = field(default_factory=itertools.count)

    @property
    def name(self) -> str:
        """The host's name (its hostname): CPU model and kernel series, as ``nested`` names it."""
        return host_name(self.spec.cpu, self.image)

    @property
    def guest_console(self) -> Path:
        """The outer file the host's :data:`GUEST_CONSOLE_PORT` writes to."""
        return self.directory / f"host{self.index}-guest-console.log"

    @property
    def console(self) -> Path:
        """The host kernel's own console (outer file)."""
        return self.directory / f"host{self.index}-console.log"

    def link_to(self, peer: FleetHost) -> str:
        """The device, inside this host, of the private byte pipe to ``peer``."""
        return self.ports[LINK_PORT.format(peer=peer.index)]

    def request(self, op: str, wait: float = REQUEST_SECONDS, **fields: Any) -> dict[str, Any]:
        """One request to the agent; its answer (FleetError when the host does not answer)."""
        assert self._control is not None
        number = next(self._ids)
        message = {"op": op, "id": number, **fields}
        self._control.sendall(json.dumps(message).encode() + b"\n")
        deadline = time.monotonic() + wait
        while True:
            line = self._line(deadline)
            if line is None:
                raise FleetError(f"fleet host {self.name}: no answer to {op} in {wait:g} s")
            answer: dict[str, Any] = json.loads(line)
            if answer.get("id") == number:
                return answer

    def _line(self, deadline: float) -> bytes | None:
        """The agent's next line, or None at ``deadline``; FleetError when it went away."""
        assert self._control is not None
        while b"\n" not in self._buffer:
            if self.process.poll() is not None:
                raise FleetError(f"fleet host {self.name}: its QEMU exited")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._control.settimeout(min(remaining, 0.5))
            try:
                data = self._control.recv(1 << 16)
            except TimeoutError:
                continue
            if not data:
                raise FleetError(f"fleet host {self.name}: its agent went away")
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes = b"",
        env: Mapping[str, str] | None = None,
        timeout: float = REQUEST_SECONDS,
    ) -> RunResult:
        """Run ``argv`` in the host (``env``: exactly this environment, else the agent's)."""
        answer = self.request(
            "run",
            wait=timeout + 10,
            argv=list(argv),
            stdin=base64.b64encode(stdin).decode(),
            env=None if env is None else dict(env),
            timeout=timeout,
        )
        if "error" in answer:
            raise FleetError(f"fleet host {self.name}: {argv[0]}: {answer['error']}")
        return RunResult(
            int(answer["status"]),
            base64.b64decode(answer["stdout"]),
            base64.b64decode(answer["stderr"]),
            float(answer["seconds"]),
        )

    def shell(self, command: str, *, timeout: float = REQUEST_SECONDS) -> RunResult:
        """``command`` run by the host's busybox sh (its applets: ls, cat, uname, ...)."""
        return self.run(["/bin/sh", "-c", command], timeout=timeout)

    def qemu_errata(self, *arguments: str, timeout: float = REQUEST_SECONDS) -> RunResult:
        """``qemu-errata ARGUMENTS`` run in the host."""
        return self.run(["/usr/bin/python3.11", "-m", "qemu_errata", *arguments], timeout=timeout)

    def spawn(self, argv: Sequence[str], output: str) -> int:
        """Start ``argv`` in the background in the host (output to ``output``); its pid."""
        answer = self.request("spawn", argv=list(argv), output=output)
        if "error" in answer:
            raise FleetError(f"fleet host {self.name}: {argv[0]}: {answer['error']}")
        return int(answer["pid"])

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        answer = self.request("write", path=path, data=base64.b64encode(data).decode(), mode=mode)
        if "error" in answer:
            raise FleetError(f"fleet host {self.name}: {path}: {answer['error']}")

    def read_file(self, path: str) -> bytes:
        answer = self.request("read", path=path)
        if "error" in answer:
            raise FleetError(f"fleet host {self.name}: {path}: {answer['error']}")
        return base64.b64decode(answer["data"])

    def qmp(
        self, qmp_socket: str, execute: str, arguments: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """QEMU's answer (``return`` or ``error``) to one QMP command on ``qmp_socket``."""
        answer = self.request(
            "qmp", socket=qmp_socket, execute=execute, arguments=dict(arguments or {})
        )
        if "return" not in answer and "class" not in answer.get("error", {}):
            raise FleetError(f"fleet host {self.name}: QMP {execute}: {answer.get('error')}")
        return answer

    def connect(self, deadline: float) -> None:
        """Connect to the control port (QEMU waits for it) and wait for the agent's hello."""
        path = self.directory / f"host{self.index}-control.sock"
        while True:
            control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                control.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                control.close()
                self._check_alive(deadline)
                time.sleep(0.05)
        self._control = control

    def wait_ready(self, deadline: float) -> None:
        """Wait for the agent's hello: the host booted; it names its ports."""
        while (line := self._line(min(deadline, time.monotonic() + 0.5))) is None:
            self._check_alive(deadline)
        hello = json.loads(line)
        if hello.get("format") != AGENT_FORMAT:
            raise FleetError(f"fleet host {self.name}: not our agent: {hello}")
        self.ports = dict(hello["ports"])
        self.kernel_release = str(hello["kernel_release"])

    def _check_alive(self, deadline: float) -> None:
        if self.process.poll() is not None:
            errors = (self.directory / f"host{self.index}-qemu.stderr").read_text(errors="replace")
            said = errors.strip().splitlines() or [f"exit status {self.process.returncode}"]
            raise FleetError(f"fleet host {self.spec.cpu}:{self.spec.kernel}: {QEMU}: {said[-1]}")
        if time.monotonic() > deadline:
            tail = _tail(self.console)
            raise FleetError(
                f"fleet host {self.name} was not ready within {BOOT_SECONDS:g} s; "
                f"its console ends with: {tail}"
            )

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@contextlib.contextmanager
def fleet(
    specs: Sequence[HostSpec], progress: Progress = lambda _: None
) -> Iterator[list[FleetHost]]:
    """Boot ``specs`` at once, linked pairwise; every QEMU is stopped when the block ends."""
    if len(specs) < 1:
        raise InputError("a fleet needs at least one host")
    for cpu in sorted({spec.cpu for spec in specs}):
        check_cpu_model(cpu)
    images = {kernel: load_image(kernel_series(kernel)) for kernel in {s.kernel for s in specs}}
    guest_image = load_image(kernel_series(GUEST_KERNEL_SERIES))
    layer = load_layer()
    hosts: list[FleetHost] = []
    with processes.temporary_directory("qemu-errata-fleet-") as directory:
        started = time.monotonic()
        shared = directory / "shared.cpio"
        _write_shared_archive(shared, guest_image)
        progress(f"fleet: our packages and the guest ready in {time.monotonic() - started:.1f} s")
        try:
            for index, spec in enumerate(specs):
                host = _start_host(
                    index,
                    spec,
                    images[spec.kernel],
                    layer=layer,
                    shared=shared,
                    directory=directory,
                    count=len(specs),
                )
                hosts.append(host)
                host.connect(time.monotonic() + BOOT_SECONDS)
                progress(f"fleet: host{index} {host.name} started (QEMU pid {host.process.pid})")
            for host in hosts:
                host.wait_ready(time.monotonic() + BOOT_SECONDS)
                progress(
                    f"fleet: host{host.index} {host.name} ready, Linux {host.kernel_release}, "
                    f"{time.monotonic() - started:.1f} s since start"
                )
            yield hosts
        finally:
            for host in hosts:
                host.close()


def _write_shared_archive(path: Path, guest_image: NestedImage) -> None:
    """What every host gets: our packages, the fleet /init and the guest's boot files."""
    with path.open("wb") as stream:
        write_packages_archive(stream, path.parent / "stage")
        archive = CpioWriter(stream)
        archive.file("init", FLEET_INIT.encode(), 0o755)
        for directory in ("qemu-errata", "qemu-errata/guest"):
            archive.directory(directory)
        archive.file(GUEST_KERNEL.lstrip("/"), guest_image.kernel.read_bytes())
        archive.file(GUEST_INITRD.lstrip("/"), guest_initramfs())
        archive.close()


def _start_host(
    index: int,
    spec: HostSpec,
    image: NestedImage,
    *,
    layer: QemuLayer,
    shared: Path,
    directory: Path,
    count: int,
) -> FleetHost:
    initrd = directory / f"host{index}-initrd.cpio"
    with initrd.open("wb") as stream:
        for part in (image.initramfs, layer.archive, shared):
            with part.open("rb") as source:
                shutil.copyfileobj(source, stream)
        archive = CpioWriter(stream)
        archive.directory("etc")
        archive.file("etc/hostname", host_name(spec.cpu, image).encode() + b"\n")
        archive.close()
    console = directory / f"host{index}-console.log"
    command = [
        *host_machine(image, spec.cpu, HOST_MEMORY_MIB, initrd, console),
        *_port(
            "control",
            f"socket,path={directory / f'host{index}-control.sock'},server=on,wait=on",
            CONTROL_PORT,
        ),
        *_port(
            "guestconsole",
            f"file,path={directory / f'host{index}-guest-console.log'}",
            GUEST_CONSOLE_PORT,
        ),
    ]
    for peer in range(count):
        if peer == index:
            continue
        low, high = sorted((index, peer))
        link = directory / f"link-{low}-{high}.sock"
        # The lower index listens; the higher one connects (and retries until it can).
        backend = (
            f"socket,path={link},server=on,wait=off"
            if index == low
            else f"socket,path={link},reconnect=1"
        )
        command += _port(f"link{peer}", backend, LINK_PORT.format(peer=peer))
    errors = directory / f"host{index}-qemu.stderr"
    with errors.open("wb") as stream:
        try:
            process = processes.start(
                command, stdin=subprocess.DEVNULL, stdout=stream, stderr=stream
            )
        except FileNotFoundError:
            raise BootError(f"{QEMU}: not installed (Debian package qemu-system-arm)") from None
    return FleetHost(index, spec, image, process, directory)


def _port(name: str, chardev: str, port: str) -> list[str]:
    return [
        "-chardev",
        f"{chardev},id={name}",
        "-device",
        f"virtserialport,chardev={name},name={port}",
    ]


def _tail(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return "(no console)"
    return lines[-1] if lines else "(empty console)"
