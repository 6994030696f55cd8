"""The ``render`` report (render/1): a model as QEMU arguments or libvirt domain XML, in JSON.

Its text is the arguments or the XML themselves, printed by the command.
"""

from __future__ import annotations

from typing import Any

from qemu_errata.vmm.args import qemu_arguments
from qemu_errata.vmm.dialects import VmmConfig

RENDER_FORMAT = "qemu-errata/render/1"


def render_json(config: VmmConfig, form: str, domain_xml: str) -> dict[str, Any]:
    """``form`` "args": the QEMU arguments; otherwise the domain XML's owned parts."""
    result: dict[str, Any] = (
        {"arguments": qemu_arguments(config)} if form == "args" else {"domain_xml": domain_xml}
    )
    return {"format": RENDER_FORMAT, **result, "notes": list(config.notes)}
