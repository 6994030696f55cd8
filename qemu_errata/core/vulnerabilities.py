"""The guest's own words: what it prints in /sys/devices/system/cpu/vulnerabilities (pure).

An arm64 kernel writes four of those files itself; every other file there is the
generic one of drivers/base/cpu.c, "Not affected" (the x86, RISC-V, ... issues):

- ``meltdown`` (cpufeature.c ``cpu_show_meltdown``): "Not affected" when the CPUs are
  Meltdown-safe (the KPTI safe list or CSV3), whether or not KPTI is on; else
  "Mitigation: PTI" with KPTI on, else "Vulnerable".
- ``spectre_v1`` (proton-pack.c): always "Mitigation: __user pointer sanitization".
- ``spectre_v2`` (proton-pack.c ``cpu_show_spectre_v2``, with Spectre-BHB folded in):
  "Vulnerable" when Spectre-v2 is; "Not affected" when neither Spectre-v2 nor
  Spectre-BHB affects the CPUs; else "Mitigation: " + "CSV2" (Spectre-v2 unaffected) or
  "Branch predictor hardening" (mitigated) + "" (BHB unaffected), ", BHB"
  (mitigated) or ", but not BHB" (vulnerable). Debian builds with unprivileged eBPF
  off by default (CONFIG_BPF_UNPRIV_DEFAULT_OFF), so never "Vulnerable: Unprivileged
  eBPF enabled".
- ``spec_store_bypass`` (proton-pack.c ``cpu_show_spec_store_bypass``): "Not affected",
  "Mitigation: Speculative Store Bypass disabled via prctl" or "Vulnerable".

The states come from the errata verdicts (core.errata.decisions): "enabled" is a
mitigation detected and effective, "vulnerable" detected and not effective, "not
needed" not detected; "detected" and "firmware" leave a hypervisor answer the input
does not hold to decide (the words are then unknown: None). ``data/guest-words.toml`` says when a
detected mitigation is effective.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from qemu_errata.core import tables
from qemu_errata.core.catalogue import Field, load_catalogue
from qemu_errata.core.data_files import package_toml
from qemu_errata.core.record import record
from qemu_errata.errors import CatalogueError

GUEST_WORDS_FORMAT = "qemu-errata/guest-words/1"
VULNERABILITIES_DIRECTORY = "/sys/devices/system/cpu/vulnerabilities"
SPECTRE_V2, SPECTRE_V4 = "ARM64_SPECTRE_V2", "ARM64_SPECTRE_V4"
SPECTRE_BHB, KPTI = "ARM64_SPECTRE_BHB", "ARM64_UNMAP_KERNEL_AT_EL0"
NOT_AFFECTED = "Not affected"
VULNERABLE = "Vulnerable"
ENABLED, NOT_NEEDED, FIRMWARE = "enabled", "not needed", "firmware"
VULNERABLE_STATE, DETECTED = "vulnerable", "detected"
# The files the arm64 kernel writes itself, in the order it lists them.
ARM64_FILES = ("meltdown", "spec_store_bypass", "spectre_v1", "spectre_v2")


@record
class Threshold:
    """A field and the least value that holds."""

    field: Field
    minimum: int

    def holds(self, registers: Mapping[str, int]) -> bool | None:
        """Whether it holds; None when ``registers`` lack the register."""
        value = registers.get(self.field.register)
        return None if value is None else self.field.number(self.field.raw(value)) >= self.minimum

    def describe(self) -> str:
        return f"{self.field.qualified_name} >= {self.minimum}"


@record
class GuestWords:
    """When a detected mitigation is effective (see data/guest-words.toml)."""

    capability: str
    mitigated_if: tuple[Threshold, ...]
    needs: str
    off_by: str

    def effective(self, registers: Mapping[str, int]) -> tuple[bool | None, str]:
        """Whether a field makes it effective (None: the input lacks the answer), and why."""
        answers = [(t, t.holds(registers)) for t in self.mitigated_if]
        held = [t for t, answer in answers if answer]
        if held:
            return True, f"{held[0].describe()}"
        if any(answer is None for _, answer in answers):
            return None, "the hypervisor's firmware answer decides"
        wanted = " or ".join(t.describe() for t in self.mitigated_if)
        return False, f"detected, but nothing mitigates it (needs {wanted})"


_THRESHOLD = tables.Row(
    {"register": tables.Value(str), "field": tables.Value(str), "min": tables.Value(int, bits=8)},
    required=["register", "field", "min"],
)
_MITIGATION = tables.Row(
    {
        "capability": tables.Value(str),
        "mitigated_if": tables.Value(list, items=tables.Value(dict, row=_THRESHOLD)),
        "needs": tables.Value(str),
        "off_by": tables.Value(str),
    },
    required=["capability", "mitigated_if"],
    name="capability",
    unique=["capability"],
)
GUEST_WORDS_FILE = tables.Row(
    {
        "table": tables.Value(dict, row=tables.Row({"format": tables.Value(str)})),
        "mitigation": tables.Value(list, items=tables.Value(dict, row=_MITIGATION)),
    },
    required=["table", "mitigation"],
)


@functools.cache
def load_guest_words() -> dict[str, GuestWords]:
    """data/guest-words.toml, by capability."""
    return guest_words_from(package_toml("guest-words.toml", GUEST_WORDS_FILE), "guest-words.toml")


def guest_words_from(document: dict[str, object], origin: str) -> dict[str, GuestWords]:
    tables.check(document, GUEST_WORDS_FILE, origin)
    table = document["table"]
    if not isinstance(table, dict) or table.get("format") != GUEST_WORDS_FORMAT:
        raise CatalogueError(f"{origin}: format is not {GUEST_WORDS_FORMAT!r}")
    catalogue = load_catalogue()
    rows: list[dict[str, object]] = document["mitigation"]  # type: ignore[assignment]
    words: dict[str, GuestWords] = {}
    for row in rows:
        thresholds = []
        for test in row["mitigated_if"]:  # type: ignore[attr-defined]
            register = catalogue.get(test["register"])
            if register is None:
                raise CatalogueError(f"{origin}: {row['capability']}: {test['register']!r} unknown")
            thresholds.append(Threshold(register.field(test["field"]), test["min"]))
        capability = str(row["capability"])
        words[capability] = GuestWords(
            capability, tuple(thresholds), str(row.get("needs", "")), str(row.get("off_by", ""))
        )
    return words


def guest_lines(states: Mapping[str, str], meltdown_safe: bool) -> dict[str, str | None]:
    """The words of each file the arm64 kernel writes, from the verdict state of each
    mitigation (by capability); None where a hypervisor answer the input lacks decides."""
    return {
        "meltdown": NOT_AFFECTED if meltdown_safe else _meltdown(states.get(KPTI)),
        "spec_store_bypass": _store_bypass(states.get(SPECTRE_V4, NOT_NEEDED)),
        "spectre_v1": "Mitigation: __user pointer sanitization",
        "spectre_v2": _spectre_v2(
            states.get(SPECTRE_V2, NOT_NEEDED), states.get(SPECTRE_BHB, NOT_NEEDED)
        ),
    }


def other_file_words() -> str:
    """What every other file of the directory says on arm64 (drivers/base/cpu.c)."""
    return NOT_AFFECTED


def _meltdown(kpti: str | None) -> str | None:
    if kpti in (FIRMWARE, DETECTED):
        return None
    return "Mitigation: PTI" if kpti == ENABLED else VULNERABLE


def _store_bypass(state: str) -> str | None:
    words = {
        NOT_NEEDED: NOT_AFFECTED,
        ENABLED: "Mitigation: Speculative Store Bypass disabled via prctl",
    }
    return None if state in (FIRMWARE, DETECTED) else words.get(state, VULNERABLE)


def _spectre_v2(v2: str, bhb: str) -> str | None:
    if {v2, bhb} & {FIRMWARE, DETECTED}:
        return None
    if v2 not in (NOT_NEEDED, ENABLED):
        return VULNERABLE
    if v2 == NOT_NEEDED and bhb == NOT_NEEDED:
        return NOT_AFFECTED
    v2_words = "CSV2" if v2 == NOT_NEEDED else "Branch predictor hardening"
    bhb_words = {NOT_NEEDED: "", ENABLED: ", BHB"}.get(bhb, ", but not BHB")
    return f"Mitigation: {v2_words}{bhb_words}"
