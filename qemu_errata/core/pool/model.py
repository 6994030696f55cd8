"""The pool model: what a pool's VMs are given, and its file format (pool-model/1)."""

from __future__ import annotations

from collections.abc import Mapping

from qemu_errata.core.catalogue import (
    Catalogue,
    Field,
    load_catalogue,
)
from qemu_errata.core.document import DocumentReader, hex_registers, is_string_list, parse_register
from qemu_errata.core.hosttypes import first_hosts, label_of
from qemu_errata.core.implementations import TargetImplementations, read_targets
from qemu_errata.core.pool_namespace import REGISTER_GROUPS
from qemu_errata.core.record import field, record

MODEL_FORMAT = "qemu-errata/pool-model/1"
MODEL_KEYS = frozenset(
    {
        "format",
        "hosts",
        "target_implementations",
        "timer_frequency_hz",
        *REGISTER_GROUPS,
        "host_types",
        "host_writes",  # models written before host types
        "losses",
        "notes",
        "accepted_lost_mitigations",
        "errata_cost",  # printed beside the model by baseline --json before 0.2.0; ignored
    }
)

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any
LOSS_KEYS = frozenset({"register", "field", "pool_value", "host_values", "explanation"})


@record
class Loss:
    """A field whose pool value differs from some hosts' own: what they lose."""

    field: Field
    pool_value: int
    host_values: Mapping[str, int]

    def explain(self) -> str:
        hosts = ", ".join(f"{h} has {self.field.describe(v)}" for h, v in self.host_values.items())
        pool = self.field.describe(self.pool_value)
        return f"{self.field.qualified_name}: the pool presents {pool}; {hosts}"

    def to_json(self, first_hosts: Mapping[str, str]) -> dict[str, Any]:
        """The loss as files and ``--json`` hold it: ``host_values`` keyed by host names (a
        type's label, ``h1 (+3 alike)``, by its first host's: ``first_hosts``)."""
        return {
            "register": self.field.register,
            "field": self.field.name,
            "pool_value": f"{self.pool_value:#x}",
            "host_values": {first_hosts.get(h, h): f"{v:#x}" for h, v in self.host_values.items()},
            "explanation": self.explain(),
        }


@record
class HostGroup:
    """Hosts of one type in a pool, and the registers the VMM writes on each of them."""

    description: str
    hosts: tuple[str, ...]
    writes: tuple[str, ...]

    @property
    def label(self) -> str:
        return label_of(self.hosts)

    def to_json(self) -> dict[str, Any]:
        return {
            "description": self.description,
            "hosts": list(self.hosts),
            "host_writes": list(self.writes),
        }


@record
class PoolModel:
    """What a pool's VMs are given: register values, target list, timer frequency."""

    id_registers: Mapping[str, int]
    target_implementations: TargetImplementations
    timer_frequency_hz: int | None = None
    firmware_registers: Mapping[str, int] = field(default_factory=dict)
    gic_registers: Mapping[str, int] = field(default_factory=dict)
    host_groups: tuple[HostGroup, ...] = ()
    losses: tuple[Loss, ...] = ()
    notes: tuple[str, ...] = ()
    # Hazards (core.errata.hazards) the operator accepted by name: guests skip these
    # mitigations or workarounds on hosts that need them, knowingly.
    accepted_lost_mitigations: tuple[str, ...] = ()

    @property
    def hosts(self) -> tuple[str, ...]:
        """Every host of the pool, type by type."""
        return tuple(host for group in self.host_groups for host in group.hosts)

    @property
    def host_writes(self) -> dict[str, tuple[str, ...]]:
        """Per host, the registers the VMM writes there."""
        return {host: group.writes for group in self.host_groups for host in group.hosts}

    def first_hosts(self) -> dict[str, str]:
        """Each host type's label (how losses name it in words) to its first host's name."""
        return first_hosts(group.hosts for group in self.host_groups)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "hosts": list(self.hosts),
            "target_implementations": self.target_implementations.to_json(),
            "timer_frequency_hz": self.timer_frequency_hz,
            **{group: hex_registers(getattr(self, group)) for group in REGISTER_GROUPS},
            "host_types": [group.to_json() for group in self.host_groups],
            "losses": [loss.to_json(self.first_hosts()) for loss in self.losses],
            "notes": list(self.notes),
            **(
                {"accepted_lost_mitigations": list(self.accepted_lost_mitigations)}
                if self.accepted_lost_mitigations
                else {}
            ),
        }


def model_from_json(data: object, origin: str, catalogue: Catalogue | None = None) -> PoolModel:
    """Read a model file; only format, id_registers and target_implementations are required."""
    reader = DocumentReader(data, origin, MODEL_FORMAT, MODEL_KEYS)
    catalogue = catalogue or load_catalogue()
    host_groups = _read_host_groups(reader)
    # Losses name a host type by its label in words, by its first host in the file.
    labels = {group.hosts[0]: label_of(group.hosts) for group in host_groups}
    return PoolModel(
        id_registers=_read_registers(reader, "id_registers", catalogue, required=True),
        target_implementations=read_targets(reader, "target_implementations"),
        timer_frequency_hz=reader.optional_int("timer_frequency_hz"),
        firmware_registers=_read_registers(reader, "firmware_registers", catalogue),
        gic_registers=_read_registers(reader, "gic_registers", catalogue),
        host_groups=host_groups,
        losses=_read_losses(reader, catalogue, labels),
        notes=reader.strings("notes"),
        accepted_lost_mitigations=reader.strings("accepted_lost_mitigations"),
    )


def _read_registers(
    reader: DocumentReader, key: str, catalogue: Catalogue, required: bool = False
) -> dict[str, int]:
    """A register group whose every name is catalogued: a misspelt name in a hand-written
    model would otherwise be shown and checked as if it were a register, and refused only
    when a VMM is told."""
    values = reader.registers(key, required)
    for name in values:
        if catalogue.get(name) is None:
            import difflib  # noqa: PLC0415 (start-up: only for a misspelt name)

            close = difflib.get_close_matches(name, list(catalogue.keys()), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise reader.fail(f"{key}.{name}", f"not a register qemu-errata knows{hint}")
    return values


def _read_host_groups(reader: DocumentReader) -> tuple[HostGroup, ...]:
    """The pool's host types; a model of before types names each host with its writes."""
    if not reader.has("host_types"):
        writes = reader.mapping("host_writes")
        for host, names in writes.items():
            if not is_string_list(names):
                raise reader.fail(f"host_writes.{host}", "not a list of register names")
        return tuple(
            HostGroup(host, (host,), tuple(writes.get(host, ())))
            for host in reader.strings("hosts")
        )
    groups = []
    for index, item in enumerate(reader.items("host_types")):
        where = f"host_types[{index}]"
        hosts, writes = item.get("hosts"), item.get("host_writes", [])
        description = item.get("description")
        if not (is_string_list(hosts) and hosts and is_string_list(writes)):
            raise reader.fail(where, "needs 'hosts' and 'host_writes', lists of names")
        if not isinstance(description, str):
            raise reader.fail(f"{where}.description", "not a string")
        groups.append(HostGroup(description, tuple(hosts), tuple(writes)))
    return tuple(groups)


def _read_losses(
    reader: DocumentReader, catalogue: Catalogue, labels: Mapping[str, str]
) -> tuple[Loss, ...]:
    """The model's lost fields, each tied back to its catalogue field, its host types named
    by their ``labels`` again (a model written before 0.4.0 has the labels already)."""
    if not reader.has("losses"):
        return ()
    losses = []
    for index, item in enumerate(reader.items("losses")):
        where = f"losses[{index}]"
        reader.check_keys(item, where, LOSS_KEYS)
        register = catalogue.get(str(item.get("register")))
        names = [f.name for f in register.fields] if register else []
        if register is None or item.get("field") not in names:
            named = f"{item.get('register')}.{item.get('field')}"
            raise reader.fail(where, f"{named} is not catalogued")
        host_values = item.get("host_values")
        if not isinstance(host_values, dict):
            raise reader.fail(f"{where}.host_values", "not an object of host to hex value")
        losses.append(
            Loss(
                register.field(str(item["field"])),
                parse_register(item.get("pool_value"), f"{where}.pool_value", reader),
                {
                    labels.get(h, h): parse_register(v, f"{where}.host_values.{h}", reader)
                    for h, v in host_values.items()
                },
            )
        )
    return tuple(losses)
