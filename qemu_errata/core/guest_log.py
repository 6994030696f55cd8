"""What a Linux guest's boot log says about the CPU it was given (no I/O).

guest-view boots a real arm64 kernel and reads its console. The kernel says
what it enabled in its own words: each CPU capability it detects, feature
or erratum workaround alike, as ``CPU features: detected: <description>``
(arch/arm64/kernel/cpufeature.c), and what it learnt of the target
implementation list as ``smccc: KVM: ...``
(drivers/firmware/smccc/kvm_guest.c). System-wide detection is done when it
logs ``alternatives: applying system-wide alternatives``: guest-view stops
the guest there.

Which detected capabilities are errata workarounds or mitigations: those the
errata table records by the kernel's description (``ErrataTable.by_log``), named
by the table's ids; a log line several errata share (one kernel capability)
is narrowed to the rows affecting an implementation the guest knows (the
list it received, or the MIDR it read). A description that names an erratum
but that the table lacks is reported without ids: a gap of the table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qemu_errata.core.errata import ErrataTable, Erratum
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.record import record

DETECTED = "CPU features: detected: "
TARGET_LIST_PREFIX = "smccc: KVM: "
DETECTION_DONE = "alternatives: applying system-wide alternatives"
_NAMES_AN_ERRATUM = re.compile(r"\berrat(um|a)\b", re.IGNORECASE)
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")


@record
class GuestErratum:
    """A workaround or mitigation the guest logged: its description, the table's ids for it."""

    description: str
    ids: tuple[str, ...]


@record
class GuestLog:
    """The guest's own account: every capability it detected, the errata among them, and its
    log lines about the target implementation list."""

    detected: tuple[str, ...]
    errata: tuple[GuestErratum, ...]
    target_lines: tuple[str, ...]


def message(line: str) -> str:
    """A console line without its printk timestamp."""
    return _TIMESTAMP.sub("", line.rstrip("\r"))


def read_guest_log(
    lines: Sequence[str], table: ErrataTable, known: Sequence[TargetImplementation]
) -> GuestLog:
    """The capabilities and target-list lines of a console, in the order the guest logged them
    (each capability once: the kernel logs a per-CPU one again for each CPU); ``known`` are
    the implementations the guest was told of."""
    detected: list[str] = []
    targets: list[str] = []
    for line in map(message, lines):
        if line.startswith(DETECTED):
            description = line.removeprefix(DETECTED).strip()
            if description not in detected:
                detected.append(description)
        elif line.startswith(TARGET_LIST_PREFIX):
            targets.append(line.removeprefix(TARGET_LIST_PREFIX).strip())
    errata = [erratum_of(d, table, known) for d in detected]
    return GuestLog(tuple(detected), tuple(e for e in errata if e is not None), tuple(targets))


def erratum_of(
    description: str, table: ErrataTable, known: Sequence[TargetImplementation]
) -> GuestErratum | None:
    """The erratum or mitigation a detected capability is, or None for a plain feature."""
    rows = table.by_log(description)
    if not rows:
        return GuestErratum(description, ()) if _NAMES_AN_ERRATUM.search(description) else None
    narrowed = [
        row
        for row in rows
        if isinstance(row, Erratum)
        and any(r.affects(i.midr, i.revidr) for r in row.affects for i in known)
    ]
    return GuestErratum(description, tuple(row.id for row in narrowed or rows))


def detection_done(line: str) -> bool:
    """Whether the guest logged that its system-wide CPU capability detection is done."""
    return message(line).startswith(DETECTION_DONE)


# guest-view's guest userspace (probe.guest_userspace) writes each file of
# /sys/devices/system/cpu/vulnerabilities to the kernel log as "<prefix><file>: <words>",
# then VULNERABILITIES_END.
VULNERABILITIES_PREFIX = "qemu-errata: vulnerabilities: "
VULNERABILITIES_END = "qemu-errata: vulnerabilities end"


def read_vulnerabilities(lines: Sequence[str]) -> dict[str, str]:
    """The words the guest's userspace found in each vulnerabilities file, by file name."""
    found: dict[str, str] = {}
    for line in map(message, lines):
        if line.startswith(VULNERABILITIES_PREFIX):
            name, _, words = line.removeprefix(VULNERABILITIES_PREFIX).partition(": ")
            found[name] = words.strip()
    return found


def userspace_done(line: str) -> bool:
    """Whether the guest's userspace logged that it has written every file."""
    return message(line).startswith(VULNERABILITIES_END)
