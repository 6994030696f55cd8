"""guest-view judges itself: what a booted guest enabled and printed against the prediction.

The prediction is ``errata``'s for that guest kernel release on the board guest-view
gave it (core.board), for the implementations the guest was told of: a kernel view
(core.errata). Compared, each a difference when they disagree:

- the "CPU features: detected:" lines of errata workarounds and mitigations: every line
  the prediction says every such guest logs must be logged, and every logged one must
  be predicted (certain, or possible: matched only on some hosts or builds, or left to
  the hypervisor's answer);
- KPTI forced on or off ("CPU features: kernel page table isolation forced ON by KASLR",
  arch/arm64/kernel/cpufeature.c): logged exactly when predicted, with the same cause;
- each file of /sys/devices/system/cpu/vulnerabilities the guest printed, with the
  predicted words (an arm64 file the prediction leaves to a hypervisor answer the input
  lacks is counted as open, not compared); an arm64 file not printed is a difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qemu_errata.core.errata import KernelView
from qemu_errata.core.guest_log import GuestLog, message
from qemu_errata.core.record import record
from qemu_errata.core.vulnerabilities import KPTI, other_file_words

# cpufeature.c logs it under its pr_fmt, "CPU features: ".
KPTI_FORCED = "CPU features: kernel page table isolation forced "


@record
class Difference:
    """One disagreement: what was compared, its name, what the guest did, what was predicted."""

    kind: str  # "detected", "kpti", "vulnerabilities"
    name: str
    guest: str
    predicted: str

    def describe(self) -> str:
        return f"{self.kind} {self.name}: the guest {self.guest}; predicted: {self.predicted}"


@record
class Judgement:
    """The differences, and how much was compared."""

    release: str
    differences: tuple[Difference, ...]
    detected_compared: int
    files_compared: int
    files_open: tuple[str, ...]

    @property
    def agrees(self) -> bool:
        return not self.differences

    def summary(self) -> str:
        compared = (
            f"{self.detected_compared} possible detected lines, KPTI's forcing and"
            f" {self.files_compared} vulnerabilities files"
        )
        open_files = (
            f" ({len(self.files_open)} left to the hypervisor's answer: "
            f"{', '.join(self.files_open)})"
            if self.files_open
            else ""
        )
        if self.agrees:
            return (
                f"The guest agrees with the errata prediction for Linux {self.release}: "
                f"{compared} compared{open_files}."
            )
        return (
            f"The guest differs from the errata prediction for Linux {self.release} in "
            f"{len(self.differences)} of {compared}{open_files}."
        )


def judge(
    release: str,
    view: KernelView,
    log: GuestLog,
    console: Sequence[str],
    printed: Mapping[str, str],
) -> Judgement:
    """Compare the guest's log, KPTI message and vulnerabilities words with ``view``."""
    certain, possible = view.expected_log()
    logged = [erratum.description for erratum in log.errata]
    differences = [
        Difference("detected", line, "did not log it", "logged by every such guest")
        for line in certain
        if line not in logged
    ]
    differences += [
        Difference("detected", line, "logged it", "not logged")
        for line in logged
        if line not in certain and line not in possible
    ]
    differences += _kpti(view, console)
    files, open_files = _files(view, printed)
    differences += files
    compared = len({*certain, *possible, *logged})
    return Judgement(
        release,
        tuple(differences),
        compared,
        len(printed) - len(open_files),
        tuple(open_files),
    )


def _kpti(view: KernelView, console: Sequence[str]) -> list[Difference]:
    verdict = next((v for v in view.mitigations if v.mitigation.capability == KPTI), None)
    predicted = ""
    if verdict is not None and verdict.reason.startswith("forced "):
        predicted = KPTI_FORCED + verdict.reason.removeprefix("forced ").split(" (")[0]
    said = next((m for m in map(message, console) if m.startswith(KPTI_FORCED)), "")
    if said == predicted:
        return []
    return [
        Difference(
            "kpti",
            "forcing",
            f'logged "{said}"' if said else "logged no forcing",
            f'"{predicted}"' if predicted else "not forced",
        )
    ]


def _files(view: KernelView, printed: Mapping[str, str]) -> tuple[list[Difference], list[str]]:
    predicted = view.vulnerabilities()
    differences = [
        Difference("vulnerabilities", name, "printed no such file", _words(words))
        for name, words in predicted.items()
        if name not in printed
    ]
    open_files: list[str] = []
    for name, words in printed.items():
        expected = predicted.get(name, other_file_words())
        if expected is None:
            open_files.append(name)
        elif words != expected:
            differences.append(
                Difference("vulnerabilities", name, f'printed "{words}"', f'"{expected}"')
            )
    return differences, open_files


def _words(words: str | None) -> str:
    """Predicted words as a difference quotes them (None: a hypervisor answer decides)."""
    return "words the hypervisor's firmware answer decides" if words is None else f'"{words}"'
