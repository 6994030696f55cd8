"""The ``show`` report (show/1): host profiles and pool models in words, and in JSON.

Pure: the caller reads the document; this turns it into lines a person reads
(CPU names and revisions, ID-register fields by their value names, targets
decoded, what a pool loses), or into show/1: the document itself beside what
the text decodes from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from qemu_errata.core.catalogue import Catalogue, Field
from qemu_errata.core.cpulist import format_cpus
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.words import plural
from qemu_errata.reports.baseline import accepted_lines

SHOW_FORMAT = "qemu-errata/show/1"


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
    lines.extend(accepted_lines(model))
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


@dataclass(frozen=True)
class ShownField:
    """A field show decodes: non-zero, or one whose values have names."""

    field: Field
    raw: int
    writable: bool | None  # None: the document knows no writable masks

    def to_json(self) -> dict[str, Any]:
        return {
            "register": self.field.register,
            "field": self.field.name,
            "value": f"{self.raw:#x}",
            "meaning": self.field.describe(self.raw),
            "writable": self.writable,
        }


def _shown_fields(
    name: str, value: int, catalogue: Catalogue, masks: Mapping[str, int] | None
) -> Iterator[ShownField]:
    register = catalogue.get(name)
    if register is None:  # a profile may hold a register this version does not catalogue
        return
    for field in register.fields:
        raw = field.raw(value)
        if raw or field.value_names:
            writable = None if masks is None else masks.get(name, 0) & field.mask == field.mask
            yield ShownField(field, raw, writable)


def _register_lines(
    values: Mapping[str, int], catalogue: Catalogue, masks: Mapping[str, int] | None
) -> Iterable[str]:
    for name, value in values.items():
        yield f"  {name} = {value:#x}"
        for shown in _shown_fields(name, value, catalogue, masks):
            writable = " (writable)" if shown.writable else ""
            yield f"    {shown.field.name}: {shown.field.describe(shown.raw)}{writable}"


def _plain_registers(title: str, values: Mapping[str, int]) -> Iterable[str]:
    if values:
        yield f"{title}:"
        yield from (f"  {name} = {value:#x}" for name, value in values.items())


def show_json(document: HostProfile | PoolModel, catalogue: Catalogue) -> dict[str, Any]:
    """show/1: the document as it is, its targets and ID-register fields decoded."""
    if isinstance(document, HostProfile):
        kind, masks = "host-profile", document.writable_masks
        targets = [i.target for i in document.implementations]
    else:
        kind, masks = "pool-model", None
        targets = list(document.target_implementations)
    return {
        "format": SHOW_FORMAT,
        "kind": kind,
        "document": document.to_json(),
        "targets": [describe_target(t) for t in targets],
        "fields": [
            shown.to_json()
            for name, value in document.id_registers.items()
            for shown in _shown_fields(name, value, catalogue, masks)
        ],
    }
