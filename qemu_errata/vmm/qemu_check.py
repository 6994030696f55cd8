"""A real QEMU under real KVM, checked against what we render (shell: ``qemu-check``).

Three steps, each reported as what it checked, with the standard library only
(it runs in the nested Linux KVM host, whose QEMU is Debian's):

1. Discovery: QEMU started with ``-machine none -S -accel kvm`` (no guest)
   and asked over QMP (qmp_wire), as ``render --qemu-binary`` asks it: every
   ID register field some QEMU series can set is listed as offered (the
   property this QEMU has) or lacking (by the newest series' name), and the
   virt machine's ``impl-cpu`` as present or not. Then what the model's
   qemu-kvm configuration needs that this QEMU lacks
   (dialects.missing_capabilities): a model needing it is not started.
2. The VM: ``-machine virt,gic-version=3 -accel kvm`` with the arguments we
   render (args.qemu_arguments) boots a kernel; it runs when its console
   (``earlycon``) shows the kernel's first line and QMP says ``running``.
3. ``verify``'s comparison (qmp.read_guest, verify.compare) against it.

QEMU is always stopped. The check passes only when nothing is lacking, the
VM ran and verify vouches for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qemu_errata import processes
from qemu_errata.core.catalogue import Catalogue
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.profile import HostProfile
from qemu_errata.errors import QmpError
from qemu_errata.vmm.args import qemu_arguments
from qemu_errata.vmm.dialects import Dialect, missing_capabilities, vmm_config
from qemu_errata.vmm.names import (
    IMPL_CPU_PROPERTY,
    KVM_CPU_MODEL,
    VIRT_MACHINE_TYPE,
    QemuSeries,
    SysregNames,
    discovered_names,
)
from qemu_errata.vmm.qmp import read_capabilities, read_guest
from qemu_errata.vmm.qmp_wire import QmpConnection, listen
from qemu_errata.vmm.verify import VerifyReport, compare

QUESTION_ARGUMENTS = ("-machine", "none", "-accel", "kvm", "-S")
VM_ARGUMENTS = ("-machine", "virt,gic-version=3", "-accel", "kvm", "-m", "256")
# earlycon: the kernel's first line comes out at once, not after its drivers are up.
GUEST_COMMAND_LINE = "earlycon console=ttyAMA0"
FIRST_LINE = "Booting Linux on physical CPU"
_COMMON_ARGUMENTS = ("-nodefaults", "-no-user-config", "-display", "none", "-no-reboot")
_START_SECONDS = 30.0
_POLL_SECONDS = 0.2
_CONSOLE_MIDR = re.compile(r"\[(0x[0-9a-f]+)\]\s*$")


@dataclass(frozen=True)
class SysregOffer:
    """Of the fields some series sets: the properties offered, and those lacking."""

    offered: tuple[str, ...]
    lacking: tuple[str, ...]


def sysreg_offer(offered: Collection[str], catalogue: Catalogue) -> SysregOffer:
    """Which SYSREG properties a CPU type with properties ``offered`` has and lacks.

    A field is offered under any spelling of any series; a lacking one is
    named as the newest series names it.
    """
    found = discovered_names(offered, catalogue)
    newest = SysregNames(QemuSeries.V10)
    have, lack = [], []
    for register in catalogue.values():
        for fld in register.fields:
            if not any(series.sets(fld, catalogue) for series in QemuSeries):
                continue
            if fld.qualified_name in found:
                have.append(found[fld.qualified_name])
            else:
                lack.append(str(newest.property_of(fld, catalogue)))
    return SysregOffer(tuple(have), tuple(lack))


@dataclass
class CheckReport:
    """What each step found; ``vm_console`` is the kernel's first line when the VM ran."""

    qemu: str
    kvm: bool
    sysreg: SysregOffer
    impl_cpu: bool
    needs: tuple[str, ...]
    arguments: tuple[str, ...] = ()
    vm_console: str | None = None
    vm_problem: str | None = None
    verify: VerifyReport | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.vm_console is not None and self.verify is not None and self.verify.ok


def check_qemu(
    binary: str,
    model: PoolModel,
    host: HostProfile | None,
    kernel: Path,
    catalogue: Catalogue,
    *,
    timeout: float,
) -> CheckReport:
    """Run the three steps (module docstring) with the QEMU ``binary``."""
    with processes.temporary_directory("qemu-errata-check-") as directory:
        started = time.monotonic()
        with _qemu(binary, QUESTION_ARGUMENTS, directory, "discovery") as (qmp, _):
            version = qmp.command("query-version")
            capabilities = asyncio.run(read_capabilities(qmp, KVM_CPU_MODEL, VIRT_MACHINE_TYPE))
        offered = capabilities.cpu_properties or frozenset()
        names = SysregNames(QemuSeries.V10, discovered_names(offered, catalogue))
        config = vmm_config(model, Dialect.QEMU_KVM, names=names, host=host)
        report = CheckReport(
            qemu=_version(version),
            kvm=capabilities.kvm_enabled,
            sysreg=sysreg_offer(offered, catalogue),
            impl_cpu=IMPL_CPU_PROPERTY in capabilities.machine_properties,
            needs=tuple(missing_capabilities(config, capabilities)),
        )
        report.seconds["discovery"] = round(time.monotonic() - started, 1)
        if report.needs:
            return report
        report.arguments = (*VM_ARGUMENTS, *qemu_arguments(config))
        started = time.monotonic()
        vm = [*report.arguments, "-kernel", str(kernel), "-append", GUEST_COMMAND_LINE]
        console = directory / "console.log"
        vm += ["-serial", f"file:{console}"]
        try:
            with _qemu(binary, vm, directory, "vm") as (qmp, process):
                report.vm_console = _first_line(console, process, timeout)
                status = qmp.command("query-status")
                report.seconds["vm_start"] = round(time.monotonic() - started, 1)
                if status.get("status") != "running":
                    report.vm_problem = f"QMP says the VM is {status.get('status')!r}"
                    report.vm_console = None
                    return report
                started = time.monotonic()
                guest = asyncio.run(read_guest(qmp, catalogue))
                report.verify = compare(model, guest, catalogue)
                report.seconds["verify"] = round(time.monotonic() - started, 1)
        except _VmDidNotRunError as problem:
            report.vm_problem = str(problem)
        return report


class _VmDidNotRunError(Exception):
    """The VM did not start or its kernel printed nothing in time (a finding, not a fault)."""


def _version(version: dict[str, Any]) -> str:
    """``query-version`` as QEMU's ``--version`` says it: ``11.1.3 (Debian 1:11.1.3+ds-1)``."""
    numbers = version.get("qemu", {})
    number = ".".join(str(numbers.get(key, "?")) for key in ("major", "minor", "micro"))
    package = str(version.get("package", "")).strip()
    return f"{number} ({package})" if package else number


def console_midr(line: str) -> int | None:
    """The MIDR the guest kernel's first line names (``... physical CPU 0x0 [0x414fd0c1]``)."""
    match = _CONSOLE_MIDR.search(line)
    return None if match is None else int(match[1], 16)


@contextlib.contextmanager
def _qemu(
    binary: str, arguments: Sequence[str], directory: Path, name: str
) -> Iterator[tuple[QmpConnection, subprocess.Popen[bytes]]]:
    """QEMU with ``arguments``, connected to our QMP socket; quit and reaped on exit."""
    path = directory / f"{name}.qmp"
    errors = directory / f"{name}.stderr"
    command = [binary, *_COMMON_ARGUMENTS, *arguments, "-qmp", f"unix:{path}"]
    with listen(str(path)) as listener, errors.open("wb") as stream:
        try:
            process = processes.start(
                command, stdin=subprocess.DEVNULL, stdout=stream, stderr=stream
            )
        except OSError as error:
            raise QmpError(f"{binary}: cannot start it: {error.strerror}") from None
        try:
            try:
                qmp = QmpConnection.accept(
                    listener, binary, _START_SECONDS, lambda: process.poll() is None
                )
            except QmpError:
                said = errors.read_text(errors="replace").strip().splitlines()
                reason = said[-1] if said else f"exit status {process.poll()}"
                if name == "vm":
                    raise _VmDidNotRunError(f"QEMU did not start the VM: {reason}") from None
                raise QmpError(f"{binary}: did not answer over QMP: {reason}") from None
            try:
                yield qmp, process
            finally:
                with contextlib.suppress(QmpError):
                    qmp.command("quit")
                qmp.close()
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
            if process.poll() is None:
                process.kill()
                process.wait()


def _first_line(console: Path, process: subprocess.Popen[bytes], timeout: float) -> str:
    """The kernel's first console line, once it is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = console.read_text(errors="replace") if console.exists() else ""
        for line in text.splitlines():
            if FIRST_LINE in line:
                return line.strip()
        if process.poll() is not None:
            status = process.returncode
            raise _VmDidNotRunError(f"QEMU exited (status {status}) before the kernel spoke")
        time.sleep(_POLL_SECONDS)
    raise _VmDidNotRunError(f"the guest kernel printed no {FIRST_LINE!r} line within {timeout:g} s")
