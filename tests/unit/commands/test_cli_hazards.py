"""Lost mitigations on the command line: baseline, check and plan refuse them unless accepted
by name; errata reports them loudly.

The pool: a Neoverse-N1 host and a Cortex-A53 host (Neoverse-N1's registers, as a host
whose KVM presents them). Linux >= 6.15 guests match the Spectre-v4 and Spectre-BHB safe
lists against ANY target implementation (``is_midr_in_range_list()``), and Cortex-A53 is on
both: on the Neoverse-N1, which needs both, its guests skip them (a real Debian 7.2 guest
did, facts file section 9).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.cli import run_cli
from support.schemas import validate

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.record import replace

A53_MIDR = 0x410FD034


@pytest.fixture
def hosts(tmp_path: Path) -> tuple[Path, Path]:
    n1 = load_embedded_profile("kvm-7.2-neoverse-n1")
    a53 = replace(
        n1,
        host="a53",
        implementations=(replace(n1.implementations[0], midr=A53_MIDR),),
    )
    paths = tmp_path / "n1.json", tmp_path / "a53.json"
    for path, profile in zip(paths, (replace(n1, host="n1"), a53), strict=True):
        path.write_text(json.dumps(profile.to_json()))
    return paths


ACCEPT_BOTH = ("--accept-lost-mitigation", "spectre-v4", "--accept-lost-mitigation", "Spectre-BHB")


def test_baseline_refuses_naming_each_lost_mitigation_and_the_host(
    hosts: tuple[Path, Path],
) -> None:
    done = run_cli("baseline", *hosts)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "The pool of n1, a53 is refused:"
    for name in ("Spectre-v4", "Spectre-BHB"):
        assert (
            f"  {name} LOST on Arm Neoverse-N1 r4p1 (n1): Arm Cortex-A53 r0p4 is on the kernel's "
            f"safe list (Linux 7.2, 7.3 guests skip it on every host); guests there run without "
            f"it: accept that by name with --accept-lost-mitigation {name}"
        ) in lines
    assert len(lines) == 4
    assert lines[-1].startswith("Accept each lost mitigation by name, or pool the CPUs")
    refusal = json.loads(run_cli("baseline", "--json", *hosts).stdout)
    assert [(b["reason"], b["values"]["mitigation"]) for b in refusal["blockers"]] == [
        ("lost-mitigation", "Spectre-v4"),
        ("lost-mitigation", "Spectre-BHB"),
    ]


def test_accepting_one_is_not_enough(hosts: tuple[Path, Path]) -> None:
    done = run_cli("baseline", *hosts, "--accept-lost-mitigation", "Spectre-v4")
    assert done.returncode == 1
    assert "Spectre-BHB LOST" in done.stdout
    assert "Spectre-v4 LOST" not in done.stdout


def test_accepted_by_name_the_model_records_it_and_check_honours_it(
    hosts: tuple[Path, Path], tmp_path: Path
) -> None:
    model = tmp_path / "model.json"
    done = run_cli("baseline", *hosts, *ACCEPT_BOTH, "-o", model)
    assert done.returncode == 0, done.stdout
    assert (
        "ACCEPTED lost mitigations (guests skip them on hosts that need them; `errata MODEL` "
        "names those hosts): Spectre-v4, Spectre-BHB"
    ) in done.stdout
    document = json.loads(model.read_text())
    assert document["accepted_lost_mitigations"] == ["Spectre-v4", "Spectre-BHB"]
    shown = run_cli("show", model).stdout.splitlines()
    assert shown[shown.index("What the pool loses (0 fields):") + 1] == (
        "ACCEPTED lost mitigations (guests skip them on hosts that need them; `errata MODEL` "
        "names those hosts): Spectre-v4, Spectre-BHB"
    )
    n1, a53 = hosts
    assert run_cli("check", model, n1).returncode == 0
    assert run_cli("check", model, a53).returncode == 0
    # The same model without the acceptance: check refuses the N1, naming both.
    del document["accepted_lost_mitigations"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(document))
    refused = run_cli("check", bare, n1)
    assert refused.returncode == 1
    assert "Spectre-v4 LOST on Arm Neoverse-N1 r4p1 (n1)" in refused.stdout
    assert "Spectre-BHB LOST on Arm Neoverse-N1 r4p1 (n1)" in refused.stdout
    assert run_cli("check", bare, n1, *ACCEPT_BOTH).returncode == 0
    assert run_cli("check", bare, a53).returncode == 0  # nothing is lost on the A53 itself
    # can-migrate takes the hook's decision: the N1 refuses a VM that would lose them.
    migrating = run_cli("can-migrate", bare, "--to", n1)
    assert migrating.returncode == 1
    assert "Spectre-BHB LOST on Arm Neoverse-N1 r4p1 (n1)" in migrating.stdout
    assert run_cli("can-migrate", model, "--to", n1).returncode == 0


def test_an_unknown_name_is_a_usage_error(hosts: tuple[Path, Path]) -> None:
    done = run_cli("baseline", *hosts, "--accept-lost-mitigation", "Spectre-v9")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        "qemu-errata: --accept-lost-mitigation Spectre-v9: no mitigation or erratum of that name"
    )


def test_errata_says_lost_never_not_needed_and_lists_the_hazards(
    hosts: tuple[Path, Path], tmp_path: Path
) -> None:
    model = tmp_path / "model.json"
    assert run_cli("baseline", *hosts, *ACCEPT_BOTH, "-o", model).returncode == 0
    done = run_cli("errata", model, "--guest-kernel", "7.2.13")
    assert done.returncode == 0  # a report: baseline, check, plan and the hook refuse
    assert "HAZARDS: 2 hazards: guests skip a mitigation or workaround" in done.stdout
    assert (
        "    Spectre-BHB LOST on Arm Neoverse-N1 r4p1: Arm Cortex-A53 r0p4 is on the kernel's "
        "safe list (Linux 7.2.13 guests skip it on every host)\n"
    ) in done.stdout
    assert "Spectre-BHB: not needed" not in done.stdout
    assert "Spectre-v4: not needed" not in done.stdout
    answer = json.loads(run_cli("errata", model, "--json").stdout)
    validate(answer, "errata")  # a lost mitigation's state is "lost"
    assert [(h["kind"], h["mitigation"], h["accepted"]) for h in answer["hazards"]] == [
        ("lost-mitigation", "Spectre-v4", True),
        ("lost-mitigation", "Spectre-BHB", True),
    ]
    (bhb,) = [h for h in answer["hazards"] if h["mitigation"] == "Spectre-BHB"]
    assert [t["midr"] for t in bhb["needed_on"]] == ["0x414fd0c1"]
    assert [t["midr"] for t in bhb["because_of"]] == [f"{A53_MIDR:#x}"]
    assert bhb["guest_kernels"] == ["7.2", "7.3"]
    verdict = next(e for e in answer["inputs"][0]["errata"] if e["id"] == "Spectre-BHB")
    assert verdict["state"] == "lost"


def test_plan_splits_what_would_lose_a_mitigation_unless_accepted(
    hosts: tuple[Path, Path],
) -> None:
    split = run_cli("plan", *hosts, "--detail")
    assert split.returncode == 0, split.stderr
    assert "Proposed: 2 pools" in split.stdout
    summary = run_cli("plan", *hosts).stdout
    assert "2 hosts of 2 types in 2 pools (" in summary
    assert (
        "  guests would lose Spectre-BHB where it is needed, a CPU on the kernel's safe list "
        "beside one that needs it (--accept-lost-mitigation Spectre-BHB accepts that): keeps 2 "
        "types"
    ) in summary
    assert "T1 + T2: cannot share a pool: Spectre-v4 LOST on Arm Neoverse-N1 r4p1" in split.stdout
    together = run_cli("plan", *hosts, *ACCEPT_BOTH, "--detail")
    assert together.returncode == 0, together.stderr
    assert "Proposed: 1 pool" in together.stdout
    assert (
        "    ACCEPTED: Spectre-BHB LOST on Arm Neoverse-N1 r4p1 (n1): Arm Cortex-A53 r0p4 is on "
        "the kernel's safe list"
    ) in together.stdout
    proposal = json.loads(run_cli("plan", "--json", *hosts, *ACCEPT_BOTH).stdout)
    (pool,) = proposal["pools"]
    assert pool["model"]["accepted_lost_mitigations"] == ["Spectre-v4", "Spectre-BHB"]
    assert len(pool["lost_mitigations"]) == 2
    # With two pools allowed, the split that loses nothing costs less and wins.
    two = run_cli("plan", *hosts, *ACCEPT_BOTH, "--pools", "2", "--detail")
    assert "Proposed: 2 pools" in two.stdout


THUNDERX_MIDR = 0x431F0A11  # Cavium ThunderX CN88xx r1p1: Cavium erratum 27456
KPTI = "Kernel page table isolation (KPTI)"


@pytest.fixture
def thunderx_and_a75(tmp_path: Path) -> list[Path]:
    """A ThunderX CN88xx r1p1 host and a Cortex-A75 host (Meltdown, no CSV3) of Neoverse-N1's
    registers but CSV3: Cavium erratum 27456 forces KPTI off for every guest that detects it."""
    n1 = load_embedded_profile("kvm-7.2-neoverse-n1")
    pfr0 = n1.id_registers["ID_AA64PFR0_EL1"] & ~(0xF << 60)  # CSV3 = 0
    paths = []
    for host, midr in (("thunderx", THUNDERX_MIDR), ("a75", 0x413FD0A1)):
        profile = replace(
            n1,
            host=host,
            implementations=(replace(n1.implementations[0], midr=midr),),
            id_registers={**n1.id_registers, "ID_AA64PFR0_EL1": pfr0},
        )
        paths.append(tmp_path / f"{host}.json")
        paths[-1].write_text(json.dumps(profile.to_json()))
    return paths


def test_plan_and_baseline_name_an_erratum_that_forces_kpti_off_not_a_safe_list(
    thunderx_and_a75: list[Path],
) -> None:
    """Listed, the ThunderX forces KPTI off for every 6.15+ guest of the pool; no safe list
    is involved, and the plan's brief reason says so."""
    paths = thunderx_and_a75
    summary = run_cli("plan", *paths)
    assert summary.returncode == 0, summary.stderr
    kpti = KPTI
    assert (
        f"  guests would lose {kpti} where it is needed, an erratum of a listed CPU forces it "
        f"off beside one that needs it (--accept-lost-mitigation '{kpti}' accepts that)"
    ) in summary.stdout
    assert "safe list" not in summary.stdout
    refused = run_cli("baseline", *paths)
    assert refused.returncode == 1
    assert "safe list" not in refused.stdout
    assert refused.stdout.splitlines()[-1] == (
        "Accept each lost mitigation by name, or pool the CPUs whose erratum forces it off "
        "apart from those that need it (`qemu-errata plan` proposes such a split)."
    )


def test_errata_says_what_a_pinned_thunderx_takes_from_older_guests(
    thunderx_and_a75: list[Path], tmp_path: Path
) -> None:
    """Pinned, the ThunderX's erratum 27456 forces KPTI off for a 6.12 guest on the A75 too:
    refused, and once accepted, ``errata`` says it is lost to the pinned MIDR there."""
    pinned = ("--pin-midr", f"{THUNDERX_MIDR:#x}")
    refused = run_cli("baseline", *thunderx_and_a75, *pinned)
    assert refused.returncode == 1
    assert (
        f"  {KPTI} LOST on Arm Cortex-A75 r3p1 (a75): the pinned MIDR Cavium ThunderX r1p1 "
        "brings Cavium erratum 27456, which forces it off for Linux 6.12 guests; guests there "
        "run without it"
    ) in refused.stdout
    model = tmp_path / "pinned.json"
    accepted = ("--accept-lost-mitigation", KPTI)
    made = run_cli("baseline", *thunderx_and_a75, *pinned, *accepted, "-o", model)
    assert made.returncode == 0, made.stdout
    older = run_cli("errata", model, "--guest-kernel", "6.12.118").stdout.splitlines()
    (on_a75,) = [line for line in older if line.startswith("  on Arm Cortex-A75 r3p1")]
    assert on_a75.endswith(f"; LOST to the pinned MIDR: {KPTI}")


def test_baseline_with_a_pinned_midr_names_every_loss_in_one_refusal(
    hosts: tuple[Path, Path],
) -> None:
    """Pinned to the Neoverse-N1's MIDR, a Linux 6.12 guest on the Cortex-A53 host (which
    reads only the MIDR) loses the A53's errata 845719 and 843419 too: the refusal names
    them beside the safe-list losses, not only once those are accepted."""
    done = run_cli("baseline", *hosts, "--pin-midr")
    assert done.returncode == 1, done.stderr
    named = {
        line.split(" LOST on ")[0].strip() for line in done.stdout.splitlines() if "LOST" in line
    }
    assert named == {"Spectre-v4", "Spectre-BHB", "ARM erratum 845719", "ARM erratum 843419"}
    assert done.stdout.splitlines()[-1].endswith("Pin no MIDR, or leave those hosts out.")
    accepting_all = [
        *ACCEPT_BOTH,
        *("--accept-lost-mitigation", "ARM erratum 845719"),
        *("--accept-lost-mitigation", "ARM erratum 843419"),
    ]
    accepted = run_cli("baseline", *hosts, "--pin-midr", *accepting_all)
    assert accepted.returncode == 0, accepted.stdout


def test_errata_json_never_says_not_needed_for_what_the_pinned_midr_hides(
    hosts: tuple[Path, Path], tmp_path: Path
) -> None:
    """Pinned to the Cortex-A53's MIDR, a Linux 6.12 guest on the Neoverse-N1 host reads the
    A53 on the Spectre-v4 and Spectre-BHB safe lists and skips both: its older-guest view in
    JSON says "lost" there, as the text's LOST does."""
    model = tmp_path / "pinned.json"
    accepting_all = [
        *ACCEPT_BOTH,
        *("--accept-lost-mitigation", "ARM erratum 3324349"),
        *("--accept-lost-mitigation", "ARM erratum 4193800"),
    ]
    pinned = ("--pin-midr", f"{A53_MIDR:#x}")
    made = run_cli("baseline", *hosts, *pinned, *accepting_all, "-o", model)
    assert made.returncode == 0, made.stdout
    answer = json.loads(run_cli("errata", model, "--guest-kernel", "6.12.118", "--json").stdout)
    validate(answer, "errata")
    older = {o["implementation"]["midr"]: o for o in answer["inputs"][0]["older_guests"]}
    states = {e["id"]: e["state"] for e in older["0x414fd0c1"]["errata"] if "state" in e}
    assert (states["Spectre-v4"], states["Spectre-BHB"]) == ("lost", "lost")
    a53 = {e["id"]: e["state"] for e in older[f"{A53_MIDR:#x}"]["errata"] if "state" in e}
    assert a53["Spectre-v4"] == "not needed"  # the A53 itself is on the safe list
