"""The ``show`` report: host profiles and pool models in words (text only).

Pure: the caller reads the document; this turns it into lines a person reads
(CPU names and revisions, ID-register fields by their value names, targets
decoded, what a pool loses).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from qemu_errata.core.catalogue import Catalogue
from qemu_errata.core.cpulist import format_cpus
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.words import plural


def describe_target(target: TargetImplementation) -> str:
    """``Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1), REVIDR 0x0, AIDR any``."""
    return f"{Midr(target.midr).describe()}, {target.revidr_aidr()}"


def profile_lines(profile: HostProfile, catalogue: Catalogue) -> list[str]:
    """A host profile in words."""
    kernel = profile.provenance.get("kernel", "unknown kernel")
    backend = profile.provenance.get("backend", "unknown")
    lines = [f"Host profile of {profile.host} (probed with --backend {backend}, {kernel})"]
    lines.append(f"CPUs ({plural(len(profile.implementations), 'type')}):")
    lines.extend(
        f"  {format_cpus(i.cpus) or 'no CPU numbers'}: {describe_target(i.target)}"
        for i in profile.implementations
    )
    lines.append(f"Timer frequency: {_frequency(profile.timer_frequency_hz)}")
    if profile.writable_masks is None:
        lines.append("Writable masks: unknown (probed without KVM): nothing counts as writable")
    lines.append("ID registers:")
    lines.extend(_register_lines(profile.id_registers, catalogue, profile.writable_masks))
    lines.extend(_plain_registers("Firmware registers", profile.firmware_registers))
    lines.extend(_plain_registers("GIC registers", profile.gic_registers))
    return lines


def model_lines(model: PoolModel, catalogue: Catalogue) -> list[str]:
    """A pool model in words."""
    lines = [f"Pool model{_hosts(model)}"]
    if len(model.hosts) > NAMED_HOSTS:
        lines.extend(f"  {group.description}" for group in model.host_groups)
    lines.append(f"Target implementations ({len(model.target_implementations)}):")
    lines.extend(f"  {describe_target(t)}" for t in model.target_implementations)
    lines.append(f"Timer frequency: {_frequency(model.timer_frequency_hz)}")
    lines.append(f"What the pool loses ({plural(len(model.losses), 'field')}):")
    lines.extend(f"  {loss.explain()}" for loss in model.losses)
    lines.append("ID registers the guest sees:")
    lines.extend(_register_lines(model.id_registers, catalogue, None))
    lines.extend(_plain_registers("Firmware registers", model.firmware_registers))
    lines.extend(_plain_registers("GIC registers", model.gic_registers))
    lines.extend(f"Note: {note}" for note in model.notes)
    return lines


# Up to this many hosts the header names them all; past it, a line per host type.
NAMED_HOSTS = 8


def _hosts(model: PoolModel) -> str:
    """`` of h1, h2``, `` of 120 hosts of 3 types:`` (one line per type follows)."""
    hosts = model.hosts
    if not hosts:
        return " (written by hand)"
    if len(hosts) <= NAMED_HOSTS:
        return f" of {', '.join(hosts)}"
    return f" of {plural(len(hosts), 'host')} of {plural(len(model.host_groups), 'type')}:"


def _frequency(hz: int | None) -> str:
    return "unknown" if hz is None else f"{hz} Hz"


def _register_lines(
    values: Mapping[str, int], catalogue: Catalogue, masks: Mapping[str, int] | None
) -> Iterable[str]:
    for name, value in values.items():
        register = catalogue.get(name)
        yield f"  {name} = {value:#x}"
        if register is None:
            continue
        mask = 0 if masks is None else masks.get(name, 0)
        for field in register.fields:
            raw = field.raw(value)
            if not raw and not field.value_names:
                continue
            writable = " (writable)" if mask & field.mask == field.mask else ""
            yield f"    {field.name}: {field.describe(raw)}{writable}"


def _plain_registers(title: str, values: Mapping[str, int]) -> Iterable[str]:
    if values:
        yield f"{title}:"
        yield from (f"  {name} = {value:#x}" for name, value in values.items())
