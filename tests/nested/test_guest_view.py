"""guest-view on a nested Linux 7.2 KVM host: a real Debian 7.2 guest kernel judges a pool model.

The pool model of the embedded kvm-7.2 neoverse-n1 and cortex-a76 profiles,
with one more target implementation, Cortex-A76 r3p0, is presented to a
guest on a nested neoverse-n1 (r4p1) host, on QEMU's virt board (a KASLR
seed in /chosen) with the pinned busybox userspace. The guest's first
instructions must read the model's registers; it must ask for the whole
target list and say it got it; it must enable the workaround of ARM erratum
1418040, which Cortex-A76 up to r3p1 has and the host's Neoverse-N1 r4p1 has
not: only the list can have told it. Its KASLR seed forces KPTI on (Neoverse-N1
has no E0PD: cpufeature.c unmap_kernel_at_el0()), as ``errata`` predicts, and
guest-view, judging itself, agrees (exit 0, the last line says so); told the
guest has ``nokaslr`` while booting it with that option, it agrees too, KPTI
off. A judgement against a prediction the guest contradicts (the same guest
judged as if its firmware said NOT_AVAIL is the unit tests'; here: a run whose
guest is given ``kpti=0`` but judged against the default board) must exit 1
naming the difference. A run with a deadline too short for the boot must fail
with status 1 and the end of the guest's console.

A boot here takes some 20 s (7 s of it the guest's; more under load) and
needs the 7.2 image: full matrix only (QEMU_ERRATA_NESTED_MATRIX=1,
scripts/nested-matrix).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.cli import QEMU_ERRATA, run_cli
from support.schemas import validate

from qemu_errata.core.board import QEMU_VIRT
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.errata import kernel_view, load_errata_table
from qemu_errata.core.guest_judgement import judge
from qemu_errata.core.guest_log import read_guest_log, read_vulnerabilities
from qemu_errata.core.implementations import TargetImplementation

MATRIX_ENVIRONMENT = "QEMU_ERRATA_NESTED_MATRIX"
pytestmark = pytest.mark.skipif(
    not os.environ.get(MATRIX_ENVIRONMENT),
    reason=f"four nested boots of Linux 7.2 (about 80 s): full matrix only"
    f" ({MATRIX_ENVIRONMENT}=1)",
)
CORTEX_A76_R3P0 = {"midr": "0x413fd0b0", "revidr": "0x0", "aidr": "0x0"}
ERRATUM_OF_THE_LISTED_A76 = "ARM erratum 1418040"
KPTI = "Kernel page table isolation (KPTI)"
NESTED = (QEMU_ERRATA, "nested", "--kernel", "7.2", "--cpu", "neoverse-n1", "--timeout", "600")


def nested_guest_view(model: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NESTED, "--", "guest-view", str(model), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("guest-view") / "model.json"
    made = run_cli("baseline", "kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76", "-o", path)
    assert made.returncode == 0, made.stderr
    data = json.loads(path.read_text())
    data["target_implementations"].append(CORTEX_A76_R3P0)
    path.write_text(json.dumps(data))
    return path, data


@pytest.fixture(scope="module")
def view(model: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    completed = nested_guest_view(model[0], "--json")
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout)
    validate(result, "guest-view")
    return result


def test_the_guest_code_reads_every_id_register_of_the_model(
    model: tuple[Path, dict[str, Any]], view: dict[str, Any]
) -> None:
    catalogue = load_catalogue()
    wanted = {
        name: value
        for name, value in model[1]["id_registers"].items()
        if catalogue[name].kvm_mask_index is not None
    }
    read = {name: view["id_registers"][name]["guest"] for name in wanted}
    # An MRS UNDEFINED in the guest (GMID_EL1 without MTE) reads as zero, as kvm-validate has it.
    assert {n: "0x0" if v.startswith("UNDEFINED") else v for n, v in read.items()} == wanted
    assert view["differing_registers"] == []
    assert view["id_registers"]["MIDR_EL1"]["guest"] == "0x414fd0c1"  # the host's: not pinned


def test_the_guest_asked_for_and_logged_the_whole_target_list(
    model: tuple[Path, dict[str, Any]], view: dict[str, Any]
) -> None:
    targets = view["target_implementations"]
    assert targets["offered"]
    assert targets["version_calls"] == 1
    received = [{k: v for k, v in entry.items() if k != "index"} for entry in targets["received"]]
    assert sorted(received, key=lambda e: e["midr"]) == sorted(
        model[1]["target_implementations"], key=lambda e: e["midr"]
    )
    assert "Number of target implementation CPUs is 3" in targets["guest_log"]
    assert "smccc: KVM: Number of target implementation CPUs is 3" in view["log"]


def test_the_guest_enables_an_erratum_only_a_listed_implementation_has(
    view: dict[str, Any],
) -> None:
    assert view["log"].rstrip().endswith("qemu-errata: vulnerabilities end")
    # silicon-errata.rst files Cortex-A76's 1188873 under ARM64_ERRATUM_1418040 as well.
    assert {
        "description": ERRATUM_OF_THE_LISTED_A76,
        "ids": ["ARM erratum 1188873", ERRATUM_OF_THE_LISTED_A76],
    } in view["errata"]
    assert f"CPU features: detected: {ERRATUM_OF_THE_LISTED_A76}" in view["log"]


def test_errata_says_kpti_is_on_and_the_guest_on_qemus_board_agrees(
    model: tuple[Path, dict[str, Any]], view: dict[str, Any]
) -> None:
    predicted = run_cli("errata", model[0], "--guest-kernel", "7.2.13", "--json")
    assert predicted.returncode == 0, predicted.stderr
    (guest,) = json.loads(predicted.stdout)["inputs"]
    kpti = next(item for item in guest["errata"] if item["id"] == KPTI)
    assert (kpti["state"], kpti["reason"].split(" (")[0]) == ("enabled", "forced ON by KASLR")
    assert "CPU features: kernel page table isolation forced ON by KASLR" in view["log"]
    assert {"description": KPTI, "ids": [KPTI]} in view["errata"]
    # cpu_show_meltdown() reads __meltdown_safe (CSV3), not whether KPTI is on.
    assert view["vulnerabilities"]["meltdown"] == guest["vulnerabilities"]["files"]["meltdown"]
    assert view["vulnerabilities"]["spectre_v2"] == "Mitigation: CSV2, BHB"
    judgement = view["judgement"]
    assert (judgement["agrees"], judgement["differences"], judgement["files_open"]) == (
        True,
        [],
        [],
    )
    assert judgement["files_compared"] == len(view["vulnerabilities"]) >= 4


def test_nokaslr_turns_kpti_off_and_the_guest_agrees(
    model: tuple[Path, dict[str, Any]],
) -> None:
    completed = nested_guest_view(model[0], "--guest-cmdline", "nokaslr")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert KPTI not in completed.stdout
    assert (
        completed.stdout.rstrip()
        .splitlines()[-1]
        .startswith("The guest agrees with the errata prediction for Linux 7.2.13: ")
    )


def test_a_kpti_0_guest_agrees_when_told_and_differs_from_the_default_board_by_name(
    model: tuple[Path, dict[str, Any]],
) -> None:
    """kpti=0 on the guest's command line (early_param "kpti", read before KASLR forces it)
    turns KPTI off: guest-view, told, agrees; the same real console judged against the
    default board's prediction differs exactly in KPTI's detected line and its forcing."""
    completed = subprocess.run(
        [*NESTED, "--", "guest-view", str(model[0]), "--guest-cmdline", "kpti=0", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr  # told of kpti=0: it agrees
    told: dict[str, Any] = json.loads(completed.stdout)
    assert "kernel page table isolation forced OFF by kpti command line option" in told["log"]
    # The same console judged against the default board's prediction differs, named.
    table, lines = load_errata_table("7.2.13"), told["log"].splitlines()
    known = [
        TargetImplementation(int(e["midr"], 16), int(e["revidr"], 16), int(e["aidr"], 16))
        for e in told["target_implementations"]["received"]
    ]
    registers = {name: int(value, 16) for name, value in model[1]["id_registers"].items()}
    view = kernel_view(table, known, registers, board=QEMU_VIRT)
    judged = judge(
        table.kernel, view, read_guest_log(lines, table, known), lines, read_vulnerabilities(lines)
    )
    assert [d.kind for d in judged.differences] == ["detected", "kpti"]


def test_a_guest_out_of_time_fails_with_the_end_of_its_console(
    model: tuple[Path, dict[str, Any]],
) -> None:
    completed = nested_guest_view(model[0], "--timeout", "2")
    assert completed.returncode == 1
    assert "did not finish its CPU feature detection within 2 s" in completed.stderr
    assert "  console: [" in completed.stderr
