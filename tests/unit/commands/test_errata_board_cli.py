"""errata on QEMU's board from the command line: the board it names, --guest-cmdline, and the
guest's words in text and JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.cli import run_cli
from support.schemas import validate

KPTI = "Kernel page table isolation (KPTI)"


def n1_pool(tmp_path: Path) -> Path:
    model = tmp_path / "model.json"
    made = run_cli("baseline", "kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76", "-o", model)
    assert made.returncode == 0, made.stderr
    return model


def kpti(document: dict[str, Any]) -> dict[str, Any]:
    (pool,) = document["inputs"]
    found: dict[str, Any] = next(item for item in pool["errata"] if item["id"] == KPTI)
    return found


def test_a_neoverse_n1_pool_on_qemus_board_has_kpti_forced_on_by_kaslr(tmp_path: Path) -> None:
    model = n1_pool(tmp_path)
    done = run_cli("errata", model, "--guest-kernel", "7.2.13", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    validate(document, "errata")
    assert document["guest_board"] == {"machine": "virt", "kaslr_seed": True, "command_line": ""}
    assert (kpti(document)["state"], kpti(document)["logged"]) == ("enabled", True)
    assert document["inputs"][0]["vulnerabilities"] == {
        "files": {
            "meltdown": "Not affected",
            "spec_store_bypass": "Mitigation: Speculative Store Bypass disabled via prctl",
            "spectre_v1": "Mitigation: __user pointer sanitization",
            "spectre_v2": "Mitigation: CSV2, BHB",
        },
        "every_other_file": "Not affected",
    }
    text = run_cli("errata", model, "--guest-kernel", "7.2.13").stdout
    assert "Guest board: QEMU's virt board (a KASLR seed in /chosen, PSCI and SMCCC by HVC)" in text
    assert f"    {KPTI}: enabled: forced ON by KASLR" in text
    assert "    spectre_v2: Mitigation: CSV2, BHB\n" in text


def test_nokaslr_on_the_guest_command_line_leaves_kpti_off(tmp_path: Path) -> None:
    done = run_cli("errata", n1_pool(tmp_path), "--guest-cmdline", "nokaslr", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["guest_board"]["command_line"] == "nokaslr"
    assert kpti(document)["state"] == "not needed"


def test_an_option_not_modelled_is_one_line_of_bad_input(tmp_path: Path) -> None:
    done = run_cli("errata", n1_pool(tmp_path), "--guest-cmdline", "nokaslr quiet")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "qemu-errata: --guest-cmdline: 'quiet': not an option whose effect is modelled"
        " (known: nokaslr, kpti=, mitigations=, nospectre_v2, nospectre_bhb)\n"
    )


def a75_beside_a57(tmp_path: Path) -> Path:
    """A pool of a Cortex-A75 (Meltdown, on no KPTI safe list, no CSV3) and the KPTI-safe
    Cortex-A57: the A57/A72 pool's model with the A72 target replaced and CSV3 cleared."""
    made = tmp_path / "a57-a72.json"
    done = run_cli("baseline", "kvm-7.2-cortex-a57", "kvm-7.2-cortex-a72", "-o", made)
    assert done.returncode == 0, done.stderr
    document = json.loads(made.read_text())
    document["target_implementations"][0]["midr"] = "0x413fd0a1"
    pfr0 = int(document["id_registers"]["ID_AA64PFR0_EL1"], 16)
    document["id_registers"]["ID_AA64PFR0_EL1"] = hex(pfr0 & ~(0xF << 60))
    model = tmp_path / "a75-a57.json"
    model.write_text(json.dumps(document))
    return model


def test_nokaslr_makes_the_kpti_safe_list_take_kpti_and_the_report_says_lost(
    tmp_path: Path,
) -> None:
    # With the board's KASLR seed KPTI is forced on for every guest: nothing lost. With
    # nokaslr the A57 on the KPTI safe list turns it off for the A75 guests too.
    model = a75_beside_a57(tmp_path)
    assert json.loads(run_cli("errata", model, "--json").stdout)["hazards"] == []
    done = run_cli("errata", model, "--guest-cmdline", "nokaslr", "--json")
    document = json.loads(done.stdout)
    assert [h["mitigation"] for h in document["hazards"]] == [KPTI]
    assert kpti(document)["state"] == "lost"
    text = run_cli("errata", model, "--guest-cmdline", "nokaslr").stdout
    assert f"    {KPTI} LOST on Arm Cortex-A75 r3p1: Arm Cortex-A57 r1p0 is on" in text
    assert "(with this guest command line; baseline, check, plan and the hook judge" in text
