"""What QEMU's ``virt`` board gives a guest, and what the guest's command line changes (pure).

The errata answer is for a guest on QEMU's ``virt`` machine booted the way QEMU
boots a kernel it is given (``-kernel``, a device tree):

- ``/chosen`` holds ``kaslr-seed`` (8 bytes) and ``rng-seed`` (32 bytes): QEMU
  writes both unless the machine option ``dtb-randomness=off`` (older name
  ``dtb-kaslr-seed=off``) is given (hw/arm/virt.c, ``create_randomness``), which no
  input here names: every board modelled has the seed. An arm64 kernel with a seed
  randomises its placement and logs "KASLR enabled" (arch/arm64/kernel/kaslr.c
  ``kaslr_init``), whatever ID_AA64ISAR0_EL1.RNDR says (pi/kaslr_early.c reads RNDR
  only without a seed). ``nokaslr`` turns it off.
- With KASLR on, ``unmap_kernel_at_el0()`` (arch/arm64/kernel/cpufeature.c) forces
  KPTI on ("kernel page table isolation forced ON by KASLR") unless the CPU has E0PD
  (``kaslr_requires_kpti()``, the table's ``kaslr_kpti_unless``) or a listed CPU has
  Cavium erratum 27456, whatever CSV3 or the KPTI safe list say: the guest's
  ``meltdown`` file still says "Not affected" then (``__meltdown_safe``).
  The order there: ``kpti=`` on the command line first, then the Cavium erratum
  (forced off), then KASLR, then ``mitigations=off``, each only when nothing before
  forced it.
- PSCI and the SMCCC calls go through HVC to KVM (``/psci`` method "hvc"); the
  ARCH_WORKAROUND answers are the firmware pseudo-registers the guest's host gives it
  (no VMM sets them), which a pool model carries
  (``KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1/2/3``).

``--guest-cmdline`` names what the guest's command line changes; options this
module does not know are refused (exit 2) rather than silently predicted wrong.
"""

from __future__ import annotations

from collections.abc import Mapping

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.record import record
from qemu_errata.errors import InputError

# kstrtobool(): what "kpti=" accepts (lib/kstrtox.c): 1/y/Y/on true, 0/n/N/off false.
_TRUE = frozenset({"1", "y", "Y", "on", "On", "ON"})
_FALSE = frozenset({"0", "n", "N", "off", "Off", "OFF"})
# Options whose whole effect on the mitigations this module models.
KNOWN_OPTIONS = ("nokaslr", "kpti=", "mitigations=", "nospectre_v2", "nospectre_bhb")
CAVIUM_27456 = "ARM64_WORKAROUND_CAVIUM_27456"


@record
class Board:
    """A guest's board (QEMU's virt, a KASLR seed in /chosen) and command line, as far as its
    mitigations go."""

    nokaslr: bool = False
    kpti: bool | None = None  # kpti=: forced on (True) or off (False)
    mitigations_off: bool = False
    off: frozenset[str] = frozenset()  # further "no..." options given (nospectre_v2, ...)
    command_line: str = ""

    def turns_off(self, option: str) -> bool:
        """Whether the command line turns a mitigation off by ``option`` (or mitigations=off)."""
        return self.mitigations_off or option in self.off

    def describe(self) -> str:
        line = f', guest command line "{self.command_line}"' if self.command_line else ""
        return f"QEMU's virt board (a KASLR seed in /chosen, PSCI and SMCCC by HVC){line}"


QEMU_VIRT = Board()


def guest_board(command_line: str | None) -> Board:
    """QEMU's virt board with the guest command line ``command_line``; InputError for an option
    that changes mitigations in ways not modelled here (see KNOWN_OPTIONS)."""
    if not command_line:
        return QEMU_VIRT
    nokaslr, kpti, mitigations_off, off = False, None, False, set()
    for word in command_line.split():
        name, _, value = word.partition("=")
        if word == "nokaslr":
            nokaslr = True
        elif name == "kpti" and value in _TRUE | _FALSE:
            kpti = value in _TRUE
        elif name == "mitigations" and value in ("off", "auto"):
            mitigations_off = value == "off"
        elif word in ("nospectre_v2", "nospectre_bhb"):
            off.add(word)
        else:
            known = ", ".join(KNOWN_OPTIONS)
            raise InputError(
                f"--guest-cmdline: {word!r}: not an option whose effect is modelled"
                f" (known: {known})"
            )
    return Board(nokaslr, kpti, mitigations_off, frozenset(off), command_line)


def kpti_forced(
    board: Board,
    registers: Mapping[str, int],
    kaslr_unless: str,
    cavium_27456: bool,
) -> tuple[bool, str] | None:
    """Whether ``unmap_kernel_at_el0()`` forces KPTI (on: True) and by what, or None.

    ``kaslr_unless`` is the ID field (REG.FIELD, as errata.toml names it) that keeps KPTI
    off under KASLR; ``cavium_27456``: a listed CPU has that erratum."""
    if board.kpti is not None and not cavium_27456:
        return board.kpti, "kpti command line option"
    if cavium_27456:
        return False, CAVIUM_27456
    # KASLR is on unless nokaslr: the board's seed is there.
    if not board.nokaslr and _kaslr_requires_kpti(registers, kaslr_unless):
        return True, "KASLR"
    if board.mitigations_off:
        return False, "mitigations=off"
    return None


def _kaslr_requires_kpti(registers: Mapping[str, int], kaslr_unless: str) -> bool:
    return bool(kaslr_unless) and _field(registers, kaslr_unless) == 0


def _field(registers: Mapping[str, int], name: str) -> int:
    """The value of field REG.FIELD in ``registers`` (0 when the register is not there)."""
    register, _, field = name.partition(".")
    return load_catalogue()[register].field(field).raw(registers.get(register, 0))
