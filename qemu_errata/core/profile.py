"""Host profiles: what one host's CPUs and KVM can present to a guest.

The JSON form is ``qemu-errata/host-profile/1`` (see PRODUCT.md); this module
turns it into a typed value and back, and does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from qemu_errata.core.catalogue import parse_kernel_version
from qemu_errata.core.document import DocumentReader, hex_registers
from qemu_errata.core.implementations import Implementation, read_implementations
from qemu_errata.core.record import field, record

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

PROFILE_FORMAT = "qemu-errata/host-profile/1"
PROFILE_KEYS = frozenset(
    {
        "format",
        "host",
        "implementations",
        "id_registers",
        "writable_masks",
        "timer_frequency_hz",
        "firmware_registers",
        "gic_registers",
        "capabilities",
        "provenance",
    }
)


@record
class HostProfile:
    """One host: implementations, ID registers, KVM's writable masks and more.

    ``writable_masks`` is None when the kernel cannot tell (nothing writable);
    a register missing from it has mask 0.
    """

    host: str
    implementations: tuple[Implementation, ...]
    id_registers: Mapping[str, int]
    writable_masks: Mapping[str, int] | None
    timer_frequency_hz: int | None
    firmware_registers: Mapping[str, int] = field(default_factory=dict)
    gic_registers: Mapping[str, int] = field(default_factory=dict)
    capabilities: Mapping[str, bool] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kernel_version(self) -> tuple[int, int] | None:
        """(major, minor) of the kernel the profile was probed on, if it says."""
        release = self.provenance.get("kernel")
        return parse_kernel_version(release) if isinstance(release, str) else None

    def writable_mask(self, register: str) -> int:
        if self.writable_masks is None:
            return 0
        return self.writable_masks.get(register, 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "host": self.host,
            "implementations": [i.to_json() for i in self.implementations],
            "id_registers": hex_registers(self.id_registers),
            "writable_masks": (
                None if self.writable_masks is None else hex_registers(self.writable_masks)
            ),
            "timer_frequency_hz": self.timer_frequency_hz,
            "firmware_registers": hex_registers(self.firmware_registers),
            "gic_registers": hex_registers(self.gic_registers),
            "capabilities": dict(self.capabilities),
            "provenance": dict(self.provenance),
        }


def profile_from_json(data: object, origin: str) -> HostProfile:
    """Validate a decoded JSON document; errors name ``origin`` and the key."""
    reader = DocumentReader(data, origin, PROFILE_FORMAT, PROFILE_KEYS)
    capabilities = reader.mapping("capabilities")
    if not all(isinstance(v, bool) for v in capabilities.values()):
        raise reader.fail("capabilities", "values must be true or false")
    return HostProfile(
        host=reader.string("host"),
        implementations=read_implementations(reader, "implementations"),
        id_registers=reader.registers("id_registers", required=True),
        writable_masks=reader.optional_registers("writable_masks"),
        timer_frequency_hz=reader.optional_int("timer_frequency_hz"),
        firmware_registers=reader.registers("firmware_registers"),
        gic_registers=reader.registers("gic_registers"),
        capabilities=capabilities,
        provenance=reader.mapping("provenance"),
    )
