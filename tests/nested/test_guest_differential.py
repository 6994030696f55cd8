"""The guest differential: a real Linux guest judges the errata prediction, name for name.

For each case a pool model is made from embedded real-kernel profiles
(``baseline`` of kvm-7.2-* profiles that form a pool), further target
implementations from real MIDRs are added to its list, and ``guest-view``
boots the nested host's Debian kernel as a guest presenting it, on a nested
KVM host of one of the pool's CPU models (its own implementation is in the
list, so ``check`` passes). Then:

- the errata workarounds and mitigations the guest logs are those
  ``errata MODEL --guest-kernel <the guest's version>`` predicts it logs, by
  the kernel's description and by the errata table's ids;
- the ID registers the guest's first instructions read are the model's;
- the target list the guest asked for and logged is the model's.

A Linux 6.12 guest on a 6.12 host (no list there) is judged too: it must
enable what the prediction says of a guest reading its host's MIDR.

Each case is one nested run, as guest-view takes one model (some 11 s on
these machines: 4 s the guest's boot, the rest the nested host's, which a
batch of models per host would save). By default two cases run; every case
is QEMU_ERRATA_NESTED_MATRIX=1 (scripts/nested-matrix), which prints the
agreement count of each.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.cli import QEMU_ERRATA, run_cli
from support.schemas import validate

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.errata import load_errata_table

MATRIX = bool(os.environ.get("QEMU_ERRATA_NESTED_MATRIX"))
_GUEST_VERSION = re.compile(r"Linux version (\d+\.\d+\.\d+)")

# Real implementations (MIDR, REVIDR) the issue names beyond those of the embedded profiles.
NEOVERSE_N1_R3P1 = (0x413FD0C1, 0x0)
CORTEX_A76_R3P0 = (0x413FD0B0, 0x0)
CORTEX_A53_R0P4 = (0x410FD034, 0x0)
CORTEX_A53_R0P4_REVIDR_BIT_8 = (0x410FD034, 0x100)  # fixes ARM erratum 843419 in r0p4
# The pools the embedded kvm-7.2 profiles form (any other pair refuses): N1 r4p1 + A76 r4p1,
# A72 r0p3 + A57 r1p0, A64FX alone.
N1_A76 = ("kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76")
A72_A57 = ("kvm-7.2-cortex-a72", "kvm-7.2-cortex-a57")


@dataclass(frozen=True)
class Case:
    """A nested host's CPU model, the profiles whose pool model the guest is given, and the
    implementations added to the pool's target list."""

    host: str
    profiles: tuple[str, ...]
    added: tuple[tuple[int, int], ...] = ()
    kernel: str = "7.2"  # the nested host's, and so the guest's


CASES = {
    "neoverse-n1-r4p1+cortex-a76-r4p1": Case("neoverse-n1", N1_A76),
    "+neoverse-n1-r3p1": Case("neoverse-n1", N1_A76, (NEOVERSE_N1_R3P1,)),
    "+cortex-a76-r3p0": Case("neoverse-n1", N1_A76, (CORTEX_A76_R3P0,)),
    "+cortex-a53-r0p4": Case("neoverse-n1", N1_A76, (CORTEX_A53_R0P4,)),
    "+cortex-a53-r0p4-revidr-bit-8": Case("neoverse-n1", N1_A76, (CORTEX_A53_R0P4_REVIDR_BIT_8,)),
    "cortex-a72+cortex-a57-r1p0": Case("cortex-a72", A72_A57),
    "a64fx": Case("a64fx", ("kvm-7.2-a64fx",)),
    "every-listed-implementation": Case(
        "neoverse-n1",
        N1_A76,
        (
            NEOVERSE_N1_R3P1,
            CORTEX_A76_R3P0,
            (0x410FD083, 0x0),  # Cortex-A72 r0p3
            (0x411FD070, 0x0),  # Cortex-A57 r1p0
            CORTEX_A53_R0P4,
            CORTEX_A53_R0P4_REVIDR_BIT_8,
            (0x461F0010, 0x0),  # A64FX r1p0
        ),
    ),
    # Debian's 7.3 guest on a 7.3 host (its masks and ID registers equal 7.2.13's), with the
    # REVIDR-fixed Cortex-A53 beside the pool's own CPUs.
    "linux-7.3": Case(
        "neoverse-n1", N1_A76, (CORTEX_A53_R0P4_REVIDR_BIT_8, CORTEX_A76_R3P0), kernel="7.3"
    ),
    # A guest older than 6.15 reads its host's MIDR and ignores the list (6.12 KVM has none).
    "linux-6.12": Case(
        "neoverse-n1",
        ("kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76"),
        (CORTEX_A53_R0P4,),
        kernel="6.12",
    ),
}
# By default: the REVIDR rule with a Cortex-A53 beside the pool's own CPUs, and another host
# family whose firmware answers decide the Spectre mitigations.
DEFAULT_CASES = ("+cortex-a53-r0p4-revidr-bit-8", "cortex-a72+cortex-a57-r1p0")
RUN_CASES = list(CASES) if MATRIX else list(DEFAULT_CASES)


@dataclass(frozen=True)
class Judged:
    """A case's model, the guest's view of it and the prediction for that guest."""

    name: str
    model: dict[str, Any]
    view: dict[str, Any]
    prediction: dict[str, Any]


def make_model(case: Case, path: Path) -> dict[str, Any]:
    """The pool model of the case's profiles, with the added implementations listed."""
    made = run_cli("baseline", *case.profiles, "-o", path)
    assert made.returncode == 0, made.stderr
    model: dict[str, Any] = json.loads(path.read_text())
    model["target_implementations"] += [
        {"midr": f"{midr:#x}", "revidr": f"{revidr:#x}", "aidr": "0x0"}
        for midr, revidr in case.added
    ]
    path.write_text(json.dumps(model))
    return model


def guest_view(case: Case, model: Path) -> dict[str, Any]:
    nested = (QEMU_ERRATA, "nested", "--kernel", case.kernel, "--cpu", case.host)
    completed = subprocess.run(
        [*nested, "--timeout", "600", "--", "guest-view", str(model), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr
    view: dict[str, Any] = json.loads(completed.stdout)
    validate(view, "guest-view")
    return view


def guest_version(view: dict[str, Any]) -> str:
    found = _GUEST_VERSION.search(view["log"])
    assert found, "the guest's log names no Linux version"
    return found.group(1)


@pytest.fixture(scope="module", params=RUN_CASES)
def judged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Judged:
    name: str = request.param
    path = tmp_path_factory.mktemp("guest-differential") / "model.json"
    model = make_model(CASES[name], path)
    view = guest_view(CASES[name], path)
    predicted = run_cli("errata", path, "--guest-kernel", guest_version(view), "--json")
    assert predicted.returncode == 0, predicted.stderr
    return Judged(name, model, view, json.loads(predicted.stdout)["inputs"][0])


def predicted_for_the_guest(judged: Judged) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The expected log and errata of this guest: of the whole list, or, for a guest older
    than 6.15, of the implementation whose MIDR and REVIDR its code read."""
    if judged.prediction["guest_reads_target_list"]:
        return judged.prediction["expected_log"], judged.prediction["errata"]
    read = {
        "midr": judged.view["id_registers"]["MIDR_EL1"]["guest"],
        "revidr": judged.view["id_registers"]["REVIDR_EL1"]["guest"],
    }
    (older,) = [
        o
        for o in judged.prediction["older_guests"]
        if {k: o["implementation"][k] for k in read} == read
    ]
    return older["expected_log"], older["errata"]


def test_the_guest_enables_the_predicted_errata_name_for_name(judged: Judged) -> None:
    expected, errata = predicted_for_the_guest(judged)
    certain, possible = set(expected["detected"]), set(expected["only_some"])
    logged = {erratum["description"] for erratum in judged.view["errata"]}
    assert logged - possible == certain
    # A mitigation is logged when detected, effective or not ("vulnerable": proton-pack.c).
    predicted_ids = {
        item["id"] for item in errata if item["log"] in certain and item.get("logged", True)
    }
    guest_ids = {
        erratum_id
        for erratum in judged.view["errata"]
        if erratum["description"] in certain
        for erratum_id in erratum["ids"]
    }
    assert guest_ids == predicted_ids
    print(
        f"guest differential {judged.name}: {len(logged)} workarounds logged "
        f"({len(guest_ids)} errata and mitigations by id) as predicted, of "
        f"{len(loggable(guest_version(judged.view)))} the table says this guest can log"
    )


def loggable(version: str) -> set[str]:
    """The distinct "detected" lines a Debian guest of ``version`` can print for the table's
    rows: each was compared (logged or not as predicted)."""
    table = load_errata_table(version)
    errata = [e for e in table.errata if e.guest_detects and e.log and not e.left_out_by]
    return {e.log for e in errata} | {m.log for m in table.mitigations}


def test_guest_view_judges_the_guest_in_agreement_with_the_prediction(judged: Judged) -> None:
    """guest-view compares the guest's detected lines, KPTI's forcing and every file of
    /sys/devices/system/cpu/vulnerabilities with errata's prediction for its release (it
    exited 0); the prediction here, made apart, has the same words for the arm64 files."""
    judgement = judged.view["judgement"]
    assert (judgement["agrees"], judgement["differences"]) == (True, [])
    assert judgement["guest_kernel"] == guest_version(judged.view)
    files = (
        judged.prediction["vulnerabilities"]
        if judged.prediction["guest_reads_target_list"]
        else next(
            o["vulnerabilities"]
            for o in judged.prediction["older_guests"]
            if o["implementation"]["midr"] == judged.view["id_registers"]["MIDR_EL1"]["guest"]
        )
    )["files"]
    printed = judged.view["vulnerabilities"]
    assert {name: printed[name] for name in files if files[name] is not None} == {
        name: words for name, words in files.items() if words is not None
    }


def test_the_guest_reads_the_model_registers(judged: Judged) -> None:
    catalogue = load_catalogue()
    wanted = {
        name: value
        for name, value in judged.model["id_registers"].items()
        if catalogue[name].kvm_mask_index is not None
    }
    read = {name: judged.view["id_registers"][name]["guest"] for name in wanted}
    # An MRS UNDEFINED in the guest (GMID_EL1 without MTE) reads as zero, as kvm-validate has it.
    assert {n: "0x0" if v.startswith("UNDEFINED") else v for n, v in read.items()} == wanted
    assert judged.view["differing_registers"] == []


def test_the_guest_receives_and_logs_the_model_target_list(judged: Judged) -> None:
    targets = judged.view["target_implementations"]
    if not judged.prediction["guest_reads_target_list"]:
        assert not targets["offered"]
        assert targets["received"] == []
        return
    received = [{k: v for k, v in entry.items() if k != "index"} for entry in targets["received"]]
    # Whatever the order in the file: a model is read sorted by MIDR, then REVIDR.
    assert sorted(received, key=_midr_revidr) == sorted(
        judged.model["target_implementations"], key=_midr_revidr
    )
    count = len(received)
    assert f"Number of target implementation CPUs is {count}" in targets["guest_log"]


def _midr_revidr(entry: dict[str, str]) -> tuple[int, int]:
    return int(entry["midr"], 16), int(entry["revidr"], 16)
