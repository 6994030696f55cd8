"""Field rules: the value safe on several hosts, and which values KVM accepts.

Both follow the kernel's arm64 feature rules: a field is compared as a number
(sign-extended for signed fields, so 0xF "not implemented" is the lowest), and
KVM accepts a userspace write of a writable field when the written value is
the safe one relative to the host's value under the field's rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from qemu_errata.core.catalogue import Catalogue, Field, Register
from qemu_errata.core.registers_table import Rule


def safe_value(field: Field, new: int, current: int) -> int:
    """The raw value safe for both ``new`` and ``current`` under the field's rule.

    Mirrors how the kernel combines two CPUs' values of one field (and how KVM
    judges a written value ``new`` against the host's ``current``).
    """
    if new == current or field.rule is Rule.ANY:
        return new
    if field.rule is Rule.EXACT:
        assert field.safe is not None  # the catalogue guarantees it
        return field.safe
    if field.rule is Rule.FIXED:
        return current
    if field.rule is Rule.HIGHER_OR_ZERO and (new == 0 or current == 0):
        return 0
    pick = min if field.rule is Rule.LOWER else max
    return pick(new, current, key=field.number)


def accepts(
    field: Field,
    requested: int,
    host: int,
    writable: bool,
    kernel: tuple[int, int] | None = None,
) -> bool:
    """Whether a host whose own raw value is ``host`` can present ``requested``.

    A field the host's writable mask does not cover can only keep the host's
    value; a writable one takes any value that is safe relative to it and that
    the host's ``kernel`` (None: unknown, so the strictest) does not refuse.
    """
    if requested == host:
        return True
    if not writable or requested in field.refused_on(kernel):
        return False
    return safe_value(field, requested, host) == requested


def combine(field: Field, values: Iterable[int]) -> int:
    """The raw value safe on every host of ``values`` (at least one value)."""
    if field.rule is Rule.ANY:
        return max(values)
    iterator = iter(values)
    result = next(iterator)
    for value in iterator:
        result = safe_value(field, value, result)
    return result


def register_refusal(
    register: Register,
    requested: int,
    host_registers: Mapping[str, int],
    catalogue: Catalogue,
) -> str | None:
    """Why KVM's check on the whole register refuses ``requested`` on a host, if it does.

    ``host_registers`` are the host's own values; its own value is always accepted.
    """
    if register.kvm_check is None or requested == host_registers.get(register.name):
        return None
    return REGISTER_CHECKS[register.kvm_check](register, requested, host_registers, catalogue)


def _clidr_pou(
    register: Register, requested: int, host_registers: Mapping[str, int], catalogue: Catalogue
) -> str | None:
    """KVM refuses a CLIDR_EL1 that needs no cache clean to the PoU unless CTR_EL0.IDC is 1."""
    ctr = host_registers.get("CTR_EL0")
    idc = None if ctr is None else catalogue["CTR_EL0"].field("IDC").raw(ctr)
    level = {name: register.field(name).raw(requested) for name in ("LoC", "LoUU", "LoUIS")}
    no_pou_clean = level["LoC"] == 0 or (level["LoUU"] == 0 and level["LoUIS"] == 0)
    if no_pou_clean and idc != 1:
        return "it needs no cache clean to the PoU, and the host's CTR_EL0.IDC is not 1"
    return None


RegisterCheck = Callable[[Register, int, Mapping[str, int], Catalogue], str | None]
# The checks a catalogue entry can name with ``kvm_check``.
REGISTER_CHECKS: dict[str, RegisterCheck] = {
    "clidr-pou": _clidr_pou,
}
