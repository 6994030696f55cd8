"""Reading a running QEMU over QMP (shell): what it supports and what its guest got.

Any QMP transport will do (a ``Monitor``): a QMP socket through ``qemu.qmp``,
or a libvirt domain's own monitor (libvirt_domain.LibvirtMonitor). Every
command is bounded in time, so a stuck QEMU cannot hang the tool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from qemu.qmp import ExecuteError, QMPClient, QMPError

from qemu_errata.errors import QmpCommandError, QmpError
from qemu_errata.vmm import names as vmm_names
from qemu_errata.vmm.dialects import VmmCapabilities
from qemu_errata.vmm.verify import GuestCpu, GuestState

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
        try:
            return await asyncio.wait_for(self._client.execute(command, arguments), TIMEOUT_SECONDS)
        except ExecuteError as error:
            raise QmpCommandError(f"{command}: {error}") from None
        except (QMPError, TimeoutError) as error:
            raise QmpError(f"{self._path}: QMP command {command} failed: {error!r}") from None


@contextlib.asynccontextmanager
async def qmp_socket(path: str) -> AsyncIterator[Monitor]:
    """A monitor on the QMP socket ``path``, disconnected on exit."""
    client = QMPClient("qemu-errata")
    try:
        await asyncio.wait_for(client.connect(path), TIMEOUT_SECONDS)
    except (QMPError, OSError, TimeoutError) as error:
        raise QmpError(f"{path}: cannot connect to QMP: {error}") from None
    try:
        yield _SocketMonitor(client, path)
    finally:
        await client.disconnect()


async def read_capabilities(monitor: Monitor, cpu_model: str) -> VmmCapabilities:
    """KVM, the machine type's properties and ``cpu_model``'s (None if QEMU lacks the type)."""
    kvm = await monitor.execute("query-kvm")
    kvm_enabled = bool(kvm.get("enabled"))
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


async def read_guest(monitor: Monitor) -> GuestState:
    """Each vCPU's MIDR and the machine's target list where the property exists."""
    kvm = await monitor.execute("query-kvm")
    cpus = []
    for cpu in await monitor.execute("query-cpus-fast"):
        path = cpu["qom-path"]
        midr = await monitor.execute("qom-get", {"path": path, "property": vmm_names.MIDR_PROPERTY})
        cpus.append(GuestCpu(cpu["cpu-index"], path, midr))
    machine = await monitor.execute("qom-list", {"path": "/machine"})
    impl_cpu = None
    if any(p["name"] == vmm_names.IMPL_CPU_PROPERTY for p in machine):
        impl_cpu = await monitor.execute(
            "qom-get", {"path": "/machine", "property": vmm_names.IMPL_CPU_PROPERTY}
        )
    return GuestState(bool(kvm.get("enabled")), tuple(cpus), impl_cpu)
