"""Reading a running QEMU over QMP (shell): what it supports and what its guest got.

Any QMP transport will do (a ``Monitor``): a QMP socket through ``qemu.qmp``,
a libvirt domain's own monitor (libvirt_domain.LibvirtMonitor), or the
standard library's (qmp_wire), so the readers import without ``qemu.qmp``
(the nested host has none): its transports import it where they start. Every
command is bounded in time, so a stuck QEMU cannot hang the tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from qemu_errata.core.catalogue import Catalogue
from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.midr import MIDR_REGISTER
from qemu_errata.core.vmms import FIRMWARE_PROPERTY_NAMES
from qemu_errata.errors import QmpCommandError, QmpError
from qemu_errata.vmm import names as vmm_names
from qemu_errata.vmm.dialects import VmmCapabilities, firmware_value_read
from qemu_errata.vmm.verify import (
    GuestCpu,
    GuestRegisters,
    GuestState,
    condition_differences,
    registers_from_profile,
)

if TYPE_CHECKING:
    from qemu.qmp import QMPClient

TIMEOUT_SECONDS = 10.0
_HOST_MODEL = vmm_names.KVM_CPU_MODEL


class Monitor(Protocol):
    """Something that runs one QMP command and returns its ``return`` value."""

    async def execute(self, command: str, arguments: Mapping[str, Any] | None = None) -> Any: ...


class _SocketMonitor:
    def __init__(self, client: QMPClient, path: str) -> None:
        self._client = client
        self._path = path

    async def execute(self, command: str, arguments: Mapping[str, Any] | None = None) -> Any:
        from qemu.qmp import ExecuteError, QMPError  # noqa: PLC0415 - see the module docstring

        try:
            return await asyncio.wait_for(self._client.execute(command, arguments), TIMEOUT_SECONDS)
        except ExecuteError as error:
            raise QmpCommandError(f"{command}: {error}") from None
        except (QMPError, TimeoutError) as error:
            raise QmpError(f"{self._path}: QMP command {command} failed: {error!r}") from None


@contextlib.asynccontextmanager
async def started_qemu(binary: str) -> AsyncIterator[Monitor]:
    """A monitor on ``binary`` started for questions only, stopped and reaped on exit.

    ``-machine none -S``: no guest, no vCPU runs; ``-accel kvm`` (else tcg) so that the
    ``host`` CPU model exists wherever KVM does. QEMU connects to our socket.
    """
    from qemu.qmp import QMPClient, QMPError  # noqa: PLC0415 - see the module docstring

    with tempfile.TemporaryDirectory(prefix="qemu-errata-ask-") as directory:
        path = str(Path(directory) / "qmp.sock")
        client = QMPClient("qemu-errata")
        try:
            await client.start_server(path)
            process = await asyncio.create_subprocess_exec(
                binary,
                *("-machine", "none", "-accel", "kvm", "-accel", "tcg", "-S", "-nodefaults"),
                *("-display", "none", "-qmp", f"unix:{path}"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except (QMPError, OSError) as error:
            raise QmpError(f"{binary}: cannot start it to ask over QMP: {error}") from None
        try:
            try:
                await asyncio.wait_for(client.accept(), TIMEOUT_SECONDS)
            except (QMPError, OSError, TimeoutError):
                await _stop(process)
                assert process.stderr is not None
                said = (await process.stderr.read()).decode(errors="replace").strip()
                raise QmpError(f"{binary}: did not answer over QMP: {said}") from None
            yield _SocketMonitor(client, binary)
            with contextlib.suppress(QMPError, OSError, EOFError):
                await client.execute("quit")
        finally:
            with contextlib.suppress(QMPError, OSError, EOFError):
                await client.disconnect()
            await _stop(process)


async def _stop(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), 2.0)
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def qmp_socket(path: str) -> AsyncIterator[Monitor]:
    """A monitor on the QMP socket ``path``, disconnected on exit."""
    from qemu.qmp import QMPClient, QMPError  # noqa: PLC0415 - see the module docstring

    client = QMPClient("qemu-errata")
    try:
        await asyncio.wait_for(client.connect(path), TIMEOUT_SECONDS)
    except (QMPError, OSError, TimeoutError) as error:
        raise QmpError(f"{path}: cannot connect to QMP: {error}") from None
    try:
        yield _SocketMonitor(client, path)
    finally:
        await client.disconnect()


async def read_capabilities(
    monitor: Monitor, cpu_model: str, machine_type: str | None = None
) -> VmmCapabilities:
    """KVM, the machine type's properties and ``cpu_model``'s (None if QEMU lacks the type).

    ``machine_type`` defaults to the running machine's.
    """
    kvm = await monitor.execute("query-kvm")
    kvm_enabled = bool(kvm.get("enabled"))
    if machine_type is None:
        machine_type = await monitor.execute("qom-get", {"path": "/machine", "property": "type"})
    machine = await _type_properties(monitor, machine_type)
    cpu_type = vmm_names.cpu_type(cpu_model)
    cpu = await _type_properties(monitor, cpu_type)
    if kvm_enabled and cpu_model == _HOST_MODEL:
        # Properties a CPU type grows from the host (the SYSREG_ ones) show in its expansion.
        expansion = await monitor.execute(
            "query-cpu-model-expansion", {"type": "full", "model": {"name": cpu_model}}
        )
        cpu = (cpu or frozenset()) | frozenset(expansion["model"].get("props", {}))
    return VmmCapabilities(
        kvm_enabled=kvm_enabled,
        machine_type=machine_type,
        machine_properties=machine or frozenset(),
        cpu_type=cpu_type,
        cpu_properties=cpu,
    )


async def _type_properties(monitor: Monitor, typename: str) -> frozenset[str] | None:
    try:
        properties = await monitor.execute("qom-list-properties", {"typename": typename})
    except QmpCommandError:
        return None
    return frozenset(p["name"] for p in properties)


async def read_guest(monitor: Monitor, catalogue: Catalogue) -> GuestState:
    """Each vCPU's MIDR, the guest's ID register fields, and the machine's target list."""
    kvm = bool((await monitor.execute("query-kvm")).get("enabled"))
    cpus = []
    for cpu in await monitor.execute("query-cpus-fast"):
        path = cpu["qom-path"]
        midr = await monitor.execute("qom-get", {"path": path, "property": vmm_names.MIDR_PROPERTY})
        cpus.append(GuestCpu(cpu["cpu-index"], path, midr))
    machine = await _property_names(monitor, "/machine")
    impl_cpu = None
    if vmm_names.IMPL_CPU_PROPERTY in machine:
        impl_cpu = await monitor.execute(
            "qom-get", {"path": "/machine", "property": vmm_names.IMPL_CPU_PROPERTY}
        )
    registers: GuestRegisters | str = "this guest has no vCPU"
    timer = firmware = None
    if cpus:
        offered = await _property_names(monitor, cpus[0].qom_path)
        registers = await _read_registers(monitor, cpus[0], offered, kvm, catalogue)
        if kvm:
            firmware = await _read_firmware(monitor, cpus[0], offered, catalogue)
        else:
            timer = await _qom_get(monitor, cpus[0].qom_path, "cntfrq")
    return GuestState(
        kvm, tuple(cpus), impl_cpu, registers, timer if isinstance(timer, int) else None, firmware
    )


async def _property_names(monitor: Monitor, path: str) -> frozenset[str]:
    return frozenset(p["name"] for p in await monitor.execute("qom-list", {"path": path}))


async def _read_registers(
    monitor: Monitor, cpu: GuestCpu, offered: frozenset[str], kvm: bool, catalogue: Catalogue
) -> GuestRegisters | str:
    """The best source of the guest's fields: SYSREG properties (of ``offered``, the vCPU's),
    else our probe of its model."""
    sysreg = vmm_names.fields_of_properties(offered, catalogue)
    if sysreg:
        fields = {}
        for name, field in sysreg.items():
            value = await monitor.execute("qom-get", {"path": cpu.qom_path, "property": name})
            fields[field.qualified_name] = int(value)
        return GuestRegisters(f"the SYSREG properties of vCPU {cpu.index}", fields, {})
    if kvm:
        return (
            "this QEMU has no SYSREG properties, and under KVM QMP does not show the "
            "registers the host's kernel gives the guest"
        )
    return await _probed_model_registers(monitor, cpu, offered, catalogue)


async def _read_firmware(
    monitor: Monitor, cpu: GuestCpu, offered: frozenset[str], catalogue: Catalogue
) -> GuestRegisters | None:
    """The firmware registers a property of the vCPU shows (None: it has none of them).

    QEMU 11.1's ``kvm-psci-version`` reads ``cpu->psci_version``, which QEMU sets from
    KVM_REG_ARM_PSCI_VERSION when it makes the vCPU: the version KVM gives the guest.
    """
    fields: dict[str, int] = {}
    unknown: dict[str, str] = {}
    for register, name in FIRMWARE_PROPERTY_NAMES.items():
        if name not in offered:
            continue
        text = await _qom_get(monitor, cpu.qom_path, name)
        value = firmware_value_read(register, text)
        for field in catalogue[register].fields:
            if value is None:
                unknown[field.qualified_name] = f"the vCPU's {name} reads {text!r}"
            else:
                fields[field.qualified_name] = field.raw(value)
    if not fields and not unknown:
        return None
    return GuestRegisters(f"the firmware properties of vCPU {cpu.index}", fields, unknown)


async def _probed_model_registers(
    monitor: Monitor, cpu: GuestCpu, offered: frozenset[str], catalogue: Catalogue
) -> GuestRegisters | str:
    """A TCG guest presents its CPU model: our probe of that model, where it applies."""
    typename = await monitor.execute("qom-get", {"path": cpu.qom_path, "property": "type"})
    model = vmm_names.cpu_model_of_type(typename)
    name = f"qemu-{model}"
    if model is None or name not in embedded_profile_names():
        return f"no probe of the guest's CPU type {typename} is embedded"
    profile = load_embedded_profile(name)
    version = await monitor.execute("query-version")
    running = f"{version['qemu']['major']}.{version['qemu']['minor']}"
    probed = str(profile.provenance.get("qemu", ""))
    if not probed.startswith(f"{running}."):
        return (
            f"the embedded probe of {model} is of QEMU {probed.split(' ', maxsplit=1)[0]}, "
            f"the guest runs QEMU {running}"
        )
    conditions = {
        "gic-version": await _qom_get(monitor, "/machine", "gic-version"),
        **{
            key: await _qom_get(monitor, cpu.qom_path, key) if key in offered else None
            for key in ("has_el2", "has_el3", "pmu")
        },
    }
    unknown = condition_differences(conditions)
    registers = registers_from_profile(
        profile, catalogue, f"embedded profile {name} (our probe of QEMU {probed})", unknown
    )
    midr = catalogue[MIDR_REGISTER]
    fields = dict(registers.fields)
    # The vCPU's own midr property, which -global ...midr= may have changed.
    fields.update({f.qualified_name: f.raw(cpu.midr) for f in midr.fields})
    return GuestRegisters(registers.source, fields, unknown)


async def _qom_get(monitor: Monitor, path: str, name: str) -> object:
    try:
        return await monitor.execute("qom-get", {"path": path, "property": name})
    except QmpCommandError:
        return None
