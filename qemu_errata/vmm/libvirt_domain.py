"""Applying a pool model to a domain XML or a defined libvirt domain, and its QMP monitor.

``apply_to_domain_xml`` runs the whole pipeline on one domain document (pure).
``apply`` reads the persistent definition (with secrets, so that redefining
keeps passwords), applies the model and redefines the domain. ``defineXML``
replaces a definition in one step or not at all, so the domain is never left
undefined or half-changed. A running domain is refused unless the caller asks
to stage the change for its next boot: libvirt never changes a running guest's
CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import libvirt
import libvirt_qemu

from qemu_errata.core.pool import PoolModel
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.vmms import Vmm
from qemu_errata.errors import (
    DomainRunningError,
    LibvirtError,
    QmpCommandError,
    QmpError,
)
from qemu_errata.vmm.dialects import Dialect, VmmConfig, require_settable, vmm_config
from qemu_errata.vmm.domain_xml import (
    apply_model,
    describe_cpu,
    dialect_of,
    domain_cpu_model,
    parse_domain,
    remove_model,
    serialise,
)
from qemu_errata.vmm.names import SysregNames
from qemu_errata.vmm.pool_element import find_pool_element


@dataclass(frozen=True)
class Redefinition:
    """A domain's definition before and after (equal: unchanged), and whether the domain
    runs the old one until its next boot."""

    old_xml: str
    new_xml: str
    running: bool

    @property
    def changed(self) -> bool:
        return self.new_xml != self.old_xml


@dataclass(frozen=True)
class ApplyResult:
    """What apply changed, and how the model was rendered."""

    redefinition: Redefinition
    config: VmmConfig


def domain_dialect(data: bytes, origin: str) -> Dialect:
    """The dialect the domain XML ``data`` runs, by its type."""
    return dialect_of(parse_domain(data, origin).getroot(), origin)


def apply_to_domain_xml(
    data: bytes,
    model: PoolModel,
    origin: str,
    dialect: Dialect | None,
    qemu_cpu: str | None,
    *,
    names: SysregNames | None = None,
    host: HostProfile | None = None,
    qemu_checks_cpu: bool = False,
    vmm: Vmm | None = None,
) -> tuple[str, VmmConfig]:
    """The domain XML ``data`` with ``model`` applied, and how it was rendered.

    Without ``dialect``, the domain's type says it: ``kvm`` is qemu-kvm, ``qemu`` qemu-tcg.
    Without ``qemu_cpu``, a qemu-tcg domain keeps the CPU model it names. Replacing
    how the domain chose its CPU is said in the configuration's notes.
    """
    tree = parse_domain(data, origin)
    domain = tree.getroot()
    dialect = dialect or dialect_of(domain, origin)
    if dialect is Dialect.QEMU_TCG and qemu_cpu is None:
        qemu_cpu = domain_cpu_model(domain)
    config = vmm_config(
        model, dialect, qemu_cpu, names=names, host=host, qemu_checks_cpu=qemu_checks_cpu, vmm=vmm
    )
    before = describe_cpu(domain)
    apply_model(domain, model, config, origin)
    after = describe_cpu(domain)
    if before is not None and before != after:
        notes = (*config.notes, f"the domain's {before} is replaced by {after}")
        config = dataclasses.replace(config, notes=notes)
    return serialise(tree), config


def ignore_libvirt_error(_context: object, _error: object) -> None:
    """libvirt prints every error on stderr by default; ours are reported once, in one line."""


@contextlib.contextmanager
def libvirt_domain(uri: str, name: str) -> Iterator[Any]:
    """The domain ``name`` on the libvirt connection ``uri``, closed on exit."""
    libvirt.registerErrorHandler(ignore_libvirt_error, None)
    try:
        connection = libvirt.open(uri)
    except libvirt.libvirtError as error:
        raise LibvirtError(f"{uri}: cannot connect: {error.get_error_message()}") from None
    try:
        try:
            domain = connection.lookupByName(name)
        except libvirt.libvirtError as error:
            raise LibvirtError(f"{uri}: domain {name}: {error.get_error_message()}") from None
        yield domain
    finally:
        connection.close()


def apply_to_libvirt(
    model: PoolModel,
    *,
    uri: str,
    name: str,
    dialect: Dialect | None,
    qemu_cpu: str | None,
    qemu_checks_cpu: bool,
    next_boot: bool,
    dry_run: bool = False,
) -> ApplyResult:
    """Redefine domain ``name`` with ``model`` applied; DomainRunningError if it runs
    and the definition would change. ``qemu_checks_cpu``: a QEMU vouches for ``qemu_cpu``
    (as in vmm_config).

    With ``dry_run``, only say what would change: nothing is defined, so a running
    domain is no reason to refuse.
    """
    configs: list[VmmConfig] = []

    def change(data: bytes, where: str) -> str:
        new, config = apply_to_domain_xml(
            data, model, where, dialect, qemu_cpu, qemu_checks_cpu=qemu_checks_cpu
        )
        require_settable(config)
        configs.append(config)
        return new

    redefinition = _redefine(uri, name, change, next_boot=next_boot, dry_run=dry_run)
    return ApplyResult(redefinition, configs[0])


def unapply_from_libvirt(*, uri: str, name: str, next_boot: bool, dry_run: bool) -> Redefinition:
    """Redefine domain ``name`` without the pool model and with its own ``<cpu>`` back.

    A domain that carries no pool model is left as it is (unchanged: unapply twice is
    unapply once).
    """

    def change(data: bytes, where: str) -> str:
        tree = parse_domain(data, where)
        if find_pool_element(tree.getroot()) is not None:
            remove_model(tree.getroot(), where)
        return serialise(tree)

    return _redefine(uri, name, change, next_boot=next_boot, dry_run=dry_run)


def _redefine(
    uri: str,
    name: str,
    change: Callable[[bytes, str], str],
    *,
    next_boot: bool,
    dry_run: bool,
) -> Redefinition:
    """Change the persistent definition of ``name`` in one defineXML (or not at all)."""
    where = f"{uri}: domain {name}"
    with libvirt_domain(uri, name) as domain:
        try:
            if not domain.isPersistent():
                raise LibvirtError(f"{where} is transient: only a defined domain can change")
            running = bool(domain.isActive())
            old = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
            before = serialise(parse_domain(old.encode("utf-8"), where))
            redefinition = Redefinition(before, change(old.encode("utf-8"), where), running)
            if redefinition.changed and running and not (next_boot or dry_run):
                raise DomainRunningError(
                    f"{where} is running: a new definition takes effect at its next boot; "
                    f"give --next-boot to stage it"
                )
            if redefinition.changed and not dry_run:
                domain.connect().defineXML(redefinition.new_xml)
        except libvirt.libvirtError as error:
            raise LibvirtError(
                f"{where}: {error.get_error_message()} (the definition is unchanged)"
            ) from None
    return redefinition


class LibvirtMonitor:
    """The domain's own QMP monitor, through libvirt (libvirt marks the domain tainted)."""

    def __init__(self, domain: Any, where: str) -> None:
        self._domain = domain
        self._where = where

    async def execute(self, command: str, arguments: Mapping[str, Any] | None = None) -> Any:
        request = {"execute": command, **({"arguments": dict(arguments)} if arguments else {})}
        try:
            reply = json.loads(
                libvirt_qemu.qemuMonitorCommand(self._domain, json.dumps(request), 0)
            )
        except libvirt.libvirtError as error:
            raise QmpError(
                f"{self._where}: QMP command {command} failed: {error.get_error_message()}"
            ) from None
        if "error" in reply:
            raise QmpCommandError(f"{command}: {reply['error'].get('desc')}")
        return reply["return"]
