"""guest-view on a nested Linux 7.2 KVM host: a real Debian 7.2 guest kernel judges a pool model.

The pool model of the embedded kvm-7.2 neoverse-n1 and cortex-a76 profiles,
with one more target implementation, Cortex-A76 r3p0, is presented to a
guest on a nested neoverse-n1 (r4p1) host. The guest's first instructions
must read the model's registers; it must ask for the whole target list and
say it got it; and it must enable the workaround of ARM erratum 1418040,
which Cortex-A76 up to r3p1 has and the host's Neoverse-N1 r4p1 has not:
only the list can have told it. A second run with a deadline too short
for the boot must fail with status 1 and the end of the guest's console.

A boot here takes some 12 s (5 s of it the guest's; more under load) and
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

from qemu_errata.core.catalogue import load_catalogue

MATRIX_ENVIRONMENT = "QEMU_ERRATA_NESTED_MATRIX"
pytestmark = pytest.mark.skipif(
    not os.environ.get(MATRIX_ENVIRONMENT),
    reason=f"two nested boots of Linux 7.2 (about 20 s): full matrix only ({MATRIX_ENVIRONMENT}=1)",
)
CORTEX_A76_R3P0 = {"midr": "0x413fd0b0", "revidr": "0x0", "aidr": "0x0"}
ERRATUM_OF_THE_LISTED_A76 = "ARM erratum 1418040"
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
    assert view["log"].rstrip().endswith("alternatives: applying system-wide alternatives")
    assert {"description": ERRATUM_OF_THE_LISTED_A76, "ids": [ERRATUM_OF_THE_LISTED_A76]} in view[
        "errata"
    ]
    assert f"CPU features: detected: {ERRATUM_OF_THE_LISTED_A76}" in view["log"]


def test_a_guest_out_of_time_fails_with_the_end_of_its_console(
    model: tuple[Path, dict[str, Any]],
) -> None:
    completed = nested_guest_view(model[0], "--timeout", "2")
    assert completed.returncode == 1
    assert "did not finish its CPU feature detection within 2 s" in completed.stderr
    assert "  console: [" in completed.stderr
