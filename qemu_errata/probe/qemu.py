"""The qemu backend: the profile of a QEMU-emulated CPU model (TCG).

QEMU starts stopped (``-S``) with QMP and its gdbstub on unix sockets in a
private temporary directory (QEMU connects to sockets this process listens
on, so there is no port to pick and nothing to poll for). QMP gives the
vCPU's ``midr`` property and QEMU's version; through the gdbstub the vCPU
runs a small program (see sysreg_program) that reads every catalogued
register and CNTFRQ_EL0 with ``mrs`` at EL1, and every value the gdbstub
also publishes in system-registers.xml is read a second time there and
must agree. Then QEMU is told to quit, and is killed and reaped whatever
happens, within a bounded time.

The values describe the emulated CPU as its own EL1 sees it, which is how a
nested or emulated host is described: they are not the values KVM would
give a guest on a real host of that CPU (KVM hides or limits some fields),
and writable masks are not observable, so they are null.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from qemu.qmp import QMPClient, QMPError

from qemu_errata.core.catalogue import Catalogue, Register, load_catalogue
from qemu_errata.core.implementations import Implementation
from qemu_errata.core.midr import MIDR_REGISTER
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.registers_table import ID_REGISTER_KINDS, Kind
from qemu_errata.errors import InputError, ProbeError
from qemu_errata.probe import a64
from qemu_errata.probe.gdbstub import GdbError, GdbRemote
from qemu_errata.probe.sysreg_program import SysregProgram, build_program
from qemu_errata.processes import start_async, temporary_directory
from qemu_errata.vmm.xml_parser import parse_xml

QEMU_BINARY = "qemu-system-aarch64"
# GICv3: the GIC of every arm64 server CPU these profiles stand for; it also
# decides ID_AA64PFR0_EL1.GIC and gives the vCPU ICC_* system registers.
MACHINE = "virt,gic-version=3"
DEFAULT_TIMEOUT_S = 30.0
_QUIT_WAIT_S = 2.0
_EXIT_WAIT_S = 1.0  # after a broken connection, how long QEMU gets to show it has exited
_READ_KINDS = (*ID_REGISTER_KINDS, Kind.GIC)
_TIMER = "CNTFRQ_EL0"
# Files in the probe's private temporary directory
_QMP_SOCKET, _GDB_SOCKET, _PROGRAM, _STDERR = "qmp.sock", "gdb.sock", "program.bin", "stderr"

_T = TypeVar("_T")


@dataclass(frozen=True)
class QemuReading:
    """What one QEMU run told: its version, the vCPU's midr property and every register."""

    qemu_version: str
    midr_property: int
    values: Mapping[str, int | None]  # None: the emulated CPU does not implement it
    read_twice: tuple[str, ...]


def probe_qemu(
    model: str, host: str | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> HostProfile:
    """The profile of QEMU's CPU ``model``; ProbeError if QEMU fails, dies or hangs."""
    catalogue = load_catalogue()
    registers = registers_to_read(catalogue)
    reading = asyncio.run(_read_qemu(model, registers, timeout))
    return profile_from_reading(model, host or f"qemu-{model}", registers, reading)


def registers_to_read(catalogue: Catalogue) -> tuple[Register, ...]:
    """Catalogued registers a vCPU can read with mrs (the firmware ones are KVM's own)."""
    return tuple(r for r in catalogue.of_kind(*_READ_KINDS) if r.encoding is not None)


def profile_from_reading(
    model: str, host: str, registers: Sequence[Register], reading: QemuReading
) -> HostProfile:
    """Turn one QEMU run into a profile; ProbeError when its two MIDR readings disagree."""
    values = reading.values
    midr = values.get(MIDR_REGISTER)
    if midr != reading.midr_property:
        read = "nothing" if midr is None else f"{midr:#x}"
        raise ProbeError(
            f"QEMU CPU model {model!r}: the vCPU reads MIDR_EL1 {read}, "
            f"its midr property is {reading.midr_property:#x}"
        )
    id_registers = [r for r in registers if r.kind in ID_REGISTER_KINDS]
    return HostProfile(
        host=host,
        implementations=(
            Implementation(
                midr=midr,
                revidr=values.get("REVIDR_EL1") or 0,
                aidr=values.get("AIDR_EL1") or 0,
                cpus=(0,),
            ),
        ),
        # Like KVM for unallocated ID registers, a register the CPU lacks reads as zero.
        id_registers={r.name: values.get(r.name) or 0 for r in id_registers},
        writable_masks=None,
        timer_frequency_hz=values.get(_TIMER) or None,
        gic_registers={
            r.name: value
            for r in registers
            if r.kind is Kind.GIC and (value := values.get(r.name)) is not None
        },
        provenance={
            "backend": "qemu",
            "qemu": reading.qemu_version,
            "qemu_cpu": model,
            "machine": MACHINE,
            "registers": (
                "read by the emulated vCPU at EL1 (mrs): QEMU's model of the CPU, "
                "not the values KVM would give a guest on such a host"
            ),
            "read_twice": list(reading.read_twice),
            "not_implemented_read_as_zero": [
                r.name for r in id_registers if values.get(r.name) is None
            ],
            "writable_masks": "not observable from QEMU",
        },
    )


def gdb_register_numbers(feature_xml: str) -> dict[str, int]:
    """Register name -> number from a gdb target description feature file."""
    try:
        root = parse_xml(feature_xml.encode("utf-8"), "target description")
    except InputError as error:
        raise GdbError(str(error)) from None
    return {
        str(reg.get("name")): int(str(reg.get("regnum")))
        for reg in root.iter("reg")
        if reg.get("name") and (reg.get("regnum") or "").isdigit()
    }


def gdb_name_of(name: str, published: Mapping[str, int]) -> str | None:
    """The gdbstub's name for a register: QEMU uses the AArch32 name for some
    (``ID_PFR0``, ``CLIDR``) and marks unallocated ID slots ``_RESERVED``."""
    for candidate in (name, name.removesuffix("_EL1"), f"{name}_RESERVED"):
        if candidate in published:
            return candidate
    return None


def qemu_arguments(model: str, program: SysregProgram, directory: Path) -> list[str]:
    return [
        "-accel",
        "tcg",
        "-M",
        MACHINE,
        "-cpu",
        model,
        "-smp",
        "1",
        "-m",
        "128",
        "-S",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-chardev",
        f"socket,id=qmp,path={_option(directory / _QMP_SOCKET)}",
        "-mon",
        "chardev=qmp,mode=control",
        "-chardev",
        f"socket,id=gdb,path={_option(directory / _GDB_SOCKET)}",
        "-gdb",
        "chardev:gdb",
        "-device",
        f"loader,file={_option(directory / _PROGRAM)},addr={program.load_address:#x},cpu-num=0",
    ]


def _option(path: Path) -> str:
    """A path as a QEMU option value (a comma is written twice)."""
    return str(path).replace(",", ",,")


async def _read_qemu(model: str, registers: Sequence[Register], timeout: float) -> QemuReading:
    binary = shutil.which(QEMU_BINARY)
    if binary is None:
        raise ProbeError(f"{QEMU_BINARY}: not found on PATH (install QEMU's arm64 system emulator)")
    names = [r.name for r in registers] + [_TIMER]
    encodings = [r.encoding for r in registers if r.encoding] + [a64.CNTFRQ_EL0]
    program = build_program(encodings)
    what = f"QEMU CPU model {model!r}"
    with temporary_directory("qemu-errata-probe-") as directory:
        (directory / _PROGRAM).write_bytes(program.code)
        async with _listening(directory, what) as (qmp, gdb_listener):
            process = await _start(binary, qemu_arguments(model, program, directory), directory)
            try:
                async with asyncio.timeout(timeout):
                    session = _session(qmp, gdb_listener, program, names)
                    reading = await _unless_exited(process, session, directory, what)
                    await _quit(qmp, process)
                return reading
            except TimeoutError:
                raise ProbeError(f"{what}: QEMU did not finish within {timeout:g} s") from None
            finally:
                await _kill(process)


@contextlib.asynccontextmanager
async def _listening(directory: Path, what: str) -> AsyncIterator[tuple[QMPClient, socket.socket]]:
    """The QMP client and the gdbstub's listening socket, for QEMU to connect to."""
    qmp = QMPClient("qemu-errata-probe")
    gdb_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            await qmp.start_server(str(directory / _QMP_SOCKET))
            gdb_listener.bind(str(directory / _GDB_SOCKET))
        except (OSError, QMPError) as error:
            raise ProbeError(f"{what}: cannot listen in {directory}: {error}") from None
        gdb_listener.listen(1)
        gdb_listener.setblocking(False)
        yield qmp, gdb_listener
    finally:
        gdb_listener.close()
        with contextlib.suppress(QMPError, OSError, EOFError):
            await qmp.disconnect()


async def _start(binary: str, arguments: list[str], directory: Path) -> asyncio.subprocess.Process:
    with open(directory / _STDERR, "wb") as stderr:
        try:
            return await start_async(
                binary,
                *arguments,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        except OSError as error:
            raise ProbeError(f"{binary}: cannot start: {error.strerror}") from None


async def _session(
    qmp: QMPClient, gdb_listener: socket.socket, program: SysregProgram, names: Sequence[str]
) -> QemuReading:
    # QEMU connects both sockets while it starts; the second waits in the listen backlog.
    await qmp.accept()
    gdb_socket, _ = await asyncio.get_running_loop().sock_accept(gdb_listener)
    reader, writer = await asyncio.open_unix_connection(sock=gdb_socket)
    gdb = GdbRemote(reader, writer)
    try:
        version = _qemu_version(await qmp.execute("query-version"))
        midr = await _midr_property(qmp)
        await gdb.insert_breakpoint(program.stop_address)
        stop = await gdb.continue_until_stop()
        if not stop.startswith((b"T05", b"S05")):
            raise GdbError(f"the vCPU stopped for another reason than the breakpoint: {stop!r}")
        data = await gdb.read_memory(program.results_address, program.results_size)
        values = dict(zip(names, program.parse_results(data), strict=True))
        read_twice = await _read_again(gdb, values)
    finally:
        await gdb.close()
    return QemuReading(version, midr, values, read_twice)


async def _read_again(gdb: GdbRemote, values: Mapping[str, int | None]) -> tuple[str, ...]:
    """Compare every value the gdbstub also publishes; ProbeError on any difference."""
    published = gdb_register_numbers(await gdb.read_feature("system-registers.xml"))
    checked = []
    for name, value in values.items():
        gdb_name = gdb_name_of(name, published)
        if gdb_name is None or value is None:
            continue
        again = await gdb.read_register(published[gdb_name])
        if again != value:
            raise ProbeError(
                f"{name}: the vCPU reads {value:#x}, the gdbstub {gdb_name} {again:#x}"
            )
        checked.append(name)
    return tuple(checked)


def _qemu_version(reply: object) -> str:
    numbers = _mapping(_mapping(reply, "query-version").get("qemu"), "query-version")
    package = str(_mapping(reply, "query-version").get("package", "")).strip()
    version = ".".join(str(numbers.get(part)) for part in ("major", "minor", "micro"))
    return f"{version} {package}".strip()


async def _midr_property(qmp: QMPClient) -> int:
    cpus = await qmp.execute("query-cpus-fast")
    if not isinstance(cpus, list) or not cpus:
        raise ProbeError(f"QMP query-cpus-fast: unexpected reply {cpus!r}")
    path = _mapping(cpus[0], "query-cpus-fast").get("qom-path")
    midr = await qmp.execute("qom-get", {"path": path, "property": "midr"})
    if not isinstance(midr, int):
        raise ProbeError(f"QMP qom-get {path} midr: not a number: {midr!r}")
    return midr


def _mapping(value: object, command: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ProbeError(f"QMP {command}: unexpected reply {value!r}")
    return value


async def _unless_exited(
    process: asyncio.subprocess.Process, work: Awaitable[_T], directory: Path, what: str
) -> _T:
    """Run ``work``; if QEMU exits first, or a connection breaks, say why in one line."""
    work_task = asyncio.ensure_future(work)
    exit_task = asyncio.ensure_future(process.wait())
    try:
        await asyncio.wait({work_task, exit_task}, return_when=asyncio.FIRST_COMPLETED)
        if not work_task.done():
            raise ProbeError(f"{what}: {_exit_reason(process, directory)}")
        try:
            return work_task.result()
        except (OSError, EOFError, QMPError, GdbError) as error:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exit_task), _EXIT_WAIT_S)
            if process.returncode is not None:
                raise ProbeError(f"{what}: {_exit_reason(process, directory)}") from None
            raise ProbeError(f"{what}: {type(error).__name__}: {error}") from None
    finally:
        for task in (work_task, exit_task):
            task.cancel()
        await asyncio.gather(work_task, exit_task, return_exceptions=True)


def _exit_reason(process: asyncio.subprocess.Process, directory: Path) -> str:
    status = process.returncode
    assert status is not None
    how = (
        f"killed by {signal.Signals(-status).name}"
        if status < 0
        else f"exited with status {status}"
    )
    lines = (directory / _STDERR).read_text("utf-8", "replace").splitlines()
    last = next((line for line in reversed(lines) if line.strip()), "")
    said = last.removeprefix(f"{QEMU_BINARY}: ")
    return f"{QEMU_BINARY} {how}" + (f": {said}" if said else "")


async def _quit(qmp: QMPClient, process: asyncio.subprocess.Process) -> None:
    """Ask QEMU to quit; _kill makes sure of it if it does not."""
    with contextlib.suppress(QMPError, OSError, EOFError):
        await qmp.execute("quit")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), _QUIT_WAIT_S)


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    await process.wait()
