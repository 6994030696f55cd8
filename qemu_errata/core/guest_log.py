"""What a Linux guest's boot log says about the CPU it was given (no I/O).

guest-view boots a real arm64 kernel and reads its console. The kernel says
what it enabled in its own words: each CPU capability it detects, feature
or erratum workaround alike, as ``CPU features: detected: <description>``
(arch/arm64/kernel/cpufeature.c), and what it learnt of the target
implementation list as ``smccc: KVM: ...``
(drivers/firmware/smccc/kvm_guest.c). System-wide detection is done when it
logs ``alternatives: applying system-wide alternatives``: guest-view stops
the guest there.

Which detected capabilities are errata workarounds: those whose description
names an erratum or a Spectre variant, and the few whose description does
not (``UNNAMED_ERRATA``, the kernel's own wording). The errata table, once it
records each erratum's description, is the finer map to erratum ids.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

DETECTED = "CPU features: detected: "
TARGET_LIST_PREFIX = "smccc: KVM: "
DETECTION_DONE = "alternatives: applying system-wide alternatives"
# Workarounds of errata (kernel capability descriptions, Linux 6.12-7.2) that do not say so.
UNNAMED_ERRATA = frozenset(
    {
        "Broken broadcast TLBI completion",
        "SSBS not fully self-synchronizing",
        "Mismatched cache type (CTR_EL0)",
        "Broken AMU AMEVCNTR01 (const counter)",
        "Broken CNTVOFF_EL2",
        "C1-Pro SME DVMSync early acknowledgement",
    }
)
_ERRATUM = re.compile(r"\berrat(um|a)\b|^Spectre-", re.IGNORECASE)
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")


@dataclass(frozen=True)
class GuestLog:
    """The guest's own account: every capability it detected, errata among them, and its
    log lines about the target implementation list."""

    detected: tuple[str, ...]
    errata: tuple[str, ...]
    target_lines: tuple[str, ...]


def message(line: str) -> str:
    """A console line without its printk timestamp."""
    return _TIMESTAMP.sub("", line.rstrip("\r"))


def is_erratum(description: str) -> bool:
    return description in UNNAMED_ERRATA or bool(_ERRATUM.search(description))


def read_guest_log(lines: Sequence[str]) -> GuestLog:
    """The capabilities and target-list lines of a console, in the order the guest logged them
    (each capability once: the kernel logs a per-CPU one again for each CPU)."""
    detected: list[str] = []
    targets: list[str] = []
    for line in map(message, lines):
        if line.startswith(DETECTED):
            description = line.removeprefix(DETECTED).strip()
            if description not in detected:
                detected.append(description)
        elif line.startswith(TARGET_LIST_PREFIX):
            targets.append(line.removeprefix(TARGET_LIST_PREFIX).strip())
    return GuestLog(tuple(detected), tuple(d for d in detected if is_erratum(d)), tuple(targets))


def detection_done(line: str) -> bool:
    """Whether the guest logged that its system-wide CPU capability detection is done."""
    return message(line).startswith(DETECTION_DONE)
