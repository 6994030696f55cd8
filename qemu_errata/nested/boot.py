"""Booting the nested arm64 KVM host under QEMU TCG and running one command in it.

QEMU emulates ``-M virt,virtualization=on,gic-version=3 -cpu MODEL``, so the
kernel starts at EL2 and KVM works inside. Each run appends a second cpio
archive to the cached base initramfs with the qemu-errata package (compiled
here), the request and the input files; the guest (:mod:`.guest`) sends its
result through a virtio serial port that QEMU writes to a file, then powers
off. The kernel's console goes to a log file, used to explain a failed
boot. QEMU runs in its own session, is bounded by a timeout and is always
killed before this returns.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import json
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import qemu_errata
from qemu_errata import processes
from qemu_errata.cpio import CpioWriter
from qemu_errata.errors import BootError, InputError
from qemu_errata.nested.guest import REQUEST, RESULT_FORMAT, RESULT_PORT
from qemu_errata.nested.image import NestedImage, compile_python
from qemu_errata.processes import temporary_directory

QEMU = "qemu-system-aarch64"
DEFAULT_MEMORY_MIB = 1024
DEFAULT_TIMEOUT_SECONDS = 300.0
KERNEL_COMMAND_LINE = "console=ttyAMA0 panic=-1 quiet"
DISTRIBUTION = "qemu-errata"
SITE_PACKAGES = "usr/lib/python3/dist-packages"
_CONSOLE_TAIL_LINES = 20
_TICK_SECONDS = 0.5  # how often a watched boot's console is read


class BootWatcher(Protocol):
    """Hears how a boot goes: its QEMU command, then the console's new lines at each tick."""

    def starting(self, command: Sequence[str]) -> None: ...
    def tick(self, seconds: float, console_lines: Sequence[str]) -> None: ...
    def stopped(self) -> None: ...


@dataclass(frozen=True)
class NestedResult:
    """What the command did inside: exit status, output streams, output files by inside path."""

    exit_status: int
    stdout: bytes
    stderr: bytes
    files: dict[str, bytes]
    kernel_release: str
    seconds: float
    console: str


class NestedBootError(BootError):
    """A boot that gave no result; ``console`` holds what the kernel printed."""

    def __init__(self, message: str, console: str) -> None:
        super().__init__(message)
        self.console = console

    def console_tail(self, lines: int = _CONSOLE_TAIL_LINES) -> list[str]:
        return [line for line in self.console.splitlines() if line.strip()][-lines:]


def run_nested(
    image: NestedImage,
    cpu: str,
    argv: Sequence[str],
    *,
    inputs: Mapping[str, Path] | None = None,
    outputs: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    memory_mib: int = DEFAULT_MEMORY_MIB,
    carry_kernel: bool = False,
    layers: Sequence[Path] = (),
    watcher: BootWatcher | None = None,
) -> NestedResult:
    """Boot ``image`` on CPU model ``cpu`` and run ``qemu-errata ARGV`` there.

    ``inputs`` maps inside paths to files or directories to carry in;
    ``outputs`` are inside paths whose files come back in the result.
    ``carry_kernel`` puts the host's own kernel Image where its /boot has it
    (``/boot/vmlinuz-RELEASE``), for a command that boots it as a guest
    (guest-view): it costs the boot the Image's tens of MB. ``layers`` are
    cpio archives appended to the base initramfs (the QEMU layer). ``watcher``
    hears the boot as it goes (``nested``'s progress and ``--verbose``).
    """
    with temporary_directory("qemu-errata-nested-") as work:
        initrd = work / "initrd.cpio"
        shutil.copyfile(image.initramfs, initrd)
        with initrd.open("ab") as stream:
            for layer in layers:
                with layer.open("rb") as source:
                    shutil.copyfileobj(source, stream)
        request = {
            "argv": list(argv),
            "outputs": list(outputs),
            "hostname": host_name(cpu, image),
        }
        carried = dict(inputs or {})
        if carry_kernel:
            carried[f"/boot/vmlinuz-{image.kernel_release}"] = image.kernel
        with initrd.open("ab") as stream:
            _write_run_archive(stream, work / "stage", request, carried)
        started = time.monotonic()
        console = work / "console.log"
        result_file = work / "result.json"
        result_file.touch()
        _run_qemu(_qemu_command(image, cpu, work, memory_mib), cpu, work, timeout, watcher)
        seconds = time.monotonic() - started
        return _read_result(result_file, _text(console), seconds, cpu)


def host_name(cpu: str, image: NestedImage) -> str:
    """The nested host's name (what probes put in profiles): CPU model and kernel series."""
    return f"{cpu}-linux-{image.manifest['kernel_series']}"


def check_cpu_model(cpu: str) -> None:
    """InputError unless QEMU knows the CPU model ``cpu``."""
    try:
        listing = processes.run(
            [QEMU, "-cpu", "help"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except FileNotFoundError:
        raise BootError(f"{QEMU}: not installed (Debian package qemu-system-arm)") from None
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        raise BootError(f"{QEMU} -cpu help: failed") from None
    models = [line.strip() for line in listing.splitlines()[1:] if line.strip()]
    if cpu not in models:
        raise InputError(f"--cpu {cpu}: {QEMU} has no such CPU model")


def _write_run_archive(
    stream: BinaryIO, stage: Path, request: dict[str, Any], inputs: Mapping[str, Path]
) -> None:
    """The per-run cpio: our packages (with bytecode), the request, the input files."""
    write_packages_archive(stream, stage)
    archive = CpioWriter(stream)
    _directories(archive, str(REQUEST.parent).lstrip("/"))
    archive.file(str(REQUEST).lstrip("/"), json.dumps(request).encode())
    for inside, outside in inputs.items():
        name = inside.lstrip("/")
        _directories(archive, str(Path(name).parent))
        if outside.is_dir():
            archive.directory(name)
            archive.tree(outside, name)
        else:
            archive.file(name, outside.read_bytes())
    for inside in request["outputs"]:
        _directories(archive, str(Path(inside.lstrip("/")).parent))
    archive.close()


def write_packages_archive(stream: BinaryIO, stage: Path) -> None:
    """A cpio of the qemu-errata packages in use, with bytecode for the nested host."""
    site = stage / SITE_PACKAGES
    for package in _our_packages():
        shutil.copytree(package, site / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    compile_python(site, "/" + SITE_PACKAGES)
    archive = CpioWriter(stream)
    _directories(archive, SITE_PACKAGES)
    archive.tree(site, SITE_PACKAGES)
    archive.close()


def _our_packages() -> list[Path]:
    """The directories of the top-level packages of the qemu-errata distribution in use."""
    # importlib.metadata costs ~9 ms to import: only a nested run needs it, not every CLI start.
    from importlib import metadata  # noqa: PLC0415

    names = [
        name
        for name, distributions in metadata.packages_distributions().items()
        if DISTRIBUTION in distributions
    ]
    packages = {Path(qemu_errata.__file__).parent}
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            packages.add(Path(spec.origin).parent)
    return sorted(packages)


def _directories(archive: CpioWriter, name: str) -> None:
    """Entries for ``name`` and its parents (the kernel keeps ones that exist)."""
    parts = Path(name).parts
    for depth in range(1, len(parts) + 1):
        archive.directory("/".join(parts[:depth]))


def host_machine(
    image: NestedImage, cpu: str, memory_mib: int, initrd: Path, console: Path
) -> list[str]:
    """The QEMU command line of a nested host, up to its virtio-serial bus (ports follow)."""
    return [
        QEMU,
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-accel",
        "tcg",
        "-machine",
        "virt,virtualization=on,gic-version=3",
        # QEMU refuses the property on CPU models without AArch64.
        "-cpu",
        f"{cpu},aarch64=on",
        "-m",
        str(memory_mib),
        "-kernel",
        str(image.kernel),
        "-initrd",
        str(initrd),
        "-append",
        KERNEL_COMMAND_LINE,
        "-serial",
        f"file:{console}",
        "-device",
        "virtio-serial-pci",
    ]


def _qemu_command(image: NestedImage, cpu: str, work: Path, memory_mib: int) -> list[str]:
    return [
        *host_machine(image, cpu, memory_mib, work / "initrd.cpio", work / "console.log"),
        "-chardev",
        f"file,id=result,path={work / 'result.json'}",
        "-device",
        f"virtserialport,chardev=result,name={RESULT_PORT}",
    ]


def _run_qemu(
    command: list[str], cpu: str, work: Path, timeout: float, watcher: BootWatcher | None
) -> None:
    errors = work / "qemu.stderr"
    console = work / "console.log"
    if watcher is not None:
        watcher.starting(command)
    with errors.open("wb") as error_stream:
        try:
            process = processes.start(
                command, stdin=subprocess.DEVNULL, stdout=error_stream, stderr=error_stream
            )
        except FileNotFoundError:
            raise BootError(f"{QEMU}: not installed (Debian package qemu-system-arm)") from None
        try:
            status = (
                process.wait(timeout)
                if watcher is None
                else _watch(process, _ConsoleLines(console), timeout, watcher)
            )
        except subprocess.TimeoutExpired:
            raise NestedBootError(
                f"the nested host gave no result within {timeout:g} s{_last_words(_text(console))}",
                _text(console),
            ) from None
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if watcher is not None:
                watcher.stopped()
    if status != 0:
        lines = _text(errors).strip().splitlines() or [f"exit status {status}"]
        if lines[-1].endswith(".aarch64' not found"):
            raise InputError(f"--cpu {cpu}: not an AArch64 CPU model: it cannot run arm64 Linux")
        raise NestedBootError(f"{QEMU} failed: {lines[-1]}", _text(console))


def _watch(
    process: subprocess.Popen[bytes], console: _ConsoleLines, timeout: float, watcher: BootWatcher
) -> int:
    """Wait for QEMU as ``process.wait(timeout)`` does, telling ``watcher`` at each tick."""
    started = time.monotonic()
    while True:
        left = timeout - (time.monotonic() - started)
        if left <= 0:
            raise subprocess.TimeoutExpired(process.args, timeout)
        try:
            status = process.wait(min(left, _TICK_SECONDS))
        except subprocess.TimeoutExpired:
            watcher.tick(time.monotonic() - started, console.new())
            continue
        watcher.tick(time.monotonic() - started, console.new())
        return status


class _ConsoleLines:
    """The complete lines a growing console log gained since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new(self) -> list[str]:
        try:
            with self.path.open("rb") as stream:
                stream.seek(self.offset)
                data = stream.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        text = complete.decode("utf-8", errors="replace")
        return [line.rstrip("\r") for line in text.splitlines() if line.strip()]


def _read_result(path: Path, console: str, seconds: float, cpu: str) -> NestedResult:
    try:
        result = json.loads(path.read_bytes())
        if result.get("format") != RESULT_FORMAT:
            raise ValueError(result.get("format"))
        return NestedResult(
            exit_status=int(result["exit_status"]),
            stdout=base64.b64decode(result["stdout"]),
            stderr=base64.b64decode(result["stderr"]),
            files={name: base64.b64decode(data) for name, data in result["files"].items()},
            kernel_release=str(result["kernel_release"]),
            seconds=seconds,
            console=console,
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        pass
    panic = [line for line in console.splitlines() if "Kernel panic" in line]
    if panic:
        reason = panic[0][panic[0].index("Kernel panic") :]
        raise NestedBootError(f"the nested {cpu} host's kernel panicked: {reason}", console)
    raise NestedBootError(
        f"the nested {cpu} host stopped without a result{_last_words(console)}", console
    )


def _last_words(console: str) -> str:
    lines = [line.strip() for line in console.splitlines() if line.strip()]
    return f"; its console ends with: {lines[-1]}" if lines else "; its console is empty"


def _text(path: Path) -> str:
    try:
        return path.read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
