"""Field rules: the value safe on several hosts, and which values KVM accepts.

Both follow the kernel's arm64 feature rules: a field is compared as a number
(sign-extended for signed fields, so 0xF "not implemented" is the lowest), and
KVM accepts a userspace write of a writable field when the written value is
the safe one relative to the host's value under the field's rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from qemu_errata.catalogue import Field, Rule


def safe_value(field: Field, new: int, current: int) -> int:
    """The raw value safe for both ``new`` and ``current`` under the field's rule.

    Mirrors how the kernel combines two CPUs' values of one field (and how KVM
    judges a written value ``new`` against the host's ``current``).
    """
    if new == current:
        return new
    if field.rule is Rule.EXACT:
        assert field.safe is not None  # the catalogue guarantees it
        return field.safe
    if field.rule is Rule.FIXED:
        return current
    if field.rule is Rule.HIGHER_OR_ZERO and (new == 0 or current == 0):
        return 0
    if field.rule is Rule.LOWER:
        return min(new, current, key=field.number)
    return max(new, current, key=field.number)


def accepts(field: Field, requested: int, host: int, writable: bool) -> bool:
    """Whether a host whose own raw value is ``host`` can present ``requested``.

    A field the host's writable mask does not cover can only keep the host's
    value; a writable one takes any value that is safe relative to it.
    """
    if not writable:
        return requested == host
    return safe_value(field, requested, host) == requested


def combine(field: Field, values: Iterable[int]) -> int:
    """The raw value safe on every host of ``values`` (at least one value)."""
    iterator = iter(values)
    result = next(iterator)
    for value in iterator:
        result = safe_value(field, value, result)
    return result
