"""The installed ``qemu-errata errata`` command, and the errata cost lines of baseline/check."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.cli import run_cli
from support.hosts import (
    CORTEX_A57_MIDR,
    CORTEX_A57_REGISTERS,
    NEOVERSE_N1_MIDR,
    NEOVERSE_N1_REGISTERS,
    all_fields_writable,
    profile_json,
)

from qemu_errata.core.embedded import embedded_profile_names

# Real MIDRs: Cortex-A57 r1p0, Neoverse-N1 r4p1, Cortex-A76 r3p0, Cavium ThunderX2 r1p1.
MODEL_TARGETS = ["0x411fd070", "0x414fd0c1", "0x413fd0b0", "0x431f0af1"]


def model_json(targets: list[str], registers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "format": "qemu-errata/pool-model/1",
        "id_registers": registers
        or {"ID_AA64PFR0_EL1": "0x1100000000000011", "CTR_EL0": "0x8444c004"},
        "target_implementations": [{"midr": m, "revidr": "0x0", "aidr": "0x0"} for m in targets],
    }


def by_id(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in objects}


@pytest.mark.parametrize("name", embedded_profile_names())
def test_errata_answers_for_every_embedded_profile(name: str) -> None:
    result = run_cli("errata", name, "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["format"] == "qemu-errata/errata/1"
    (document,) = answer["inputs"]
    assert document["kind"] == "host-profile"
    assert document["implementations"]


def test_embedded_neoverse_n1_host_lists_its_cpu_errata() -> None:
    result = run_cli("errata", "kvm-7.2-neoverse-n1")
    assert result.returncode == 0, result.stderr
    assert "Host neoverse-n1-linux-7.2 (kvm-7.2-neoverse-n1):" in result.stdout
    assert "Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1), REVIDR 0x0:" in result.stdout
    # Neoverse-N1's (and Cortex-A76's) number for the erratum ARM64_ERRATUM_3194386 handles.
    assert "ARM erratum 3324349 [guest]" in result.stdout
    assert "ARM erratum 1418040" not in result.stdout  # fixed from r4p0 on


def test_a_hand_written_model_names_errata_their_bringers_and_each_host_types_cost(
    write_json: Callable[[str, Any], Path],
) -> None:
    model = write_json("pool.json", model_json(MODEL_TARGETS))
    result = run_cli("errata", model, "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    (document,) = answer["inputs"]
    errata = by_id(document["errata"])
    assert {"id", "implementations", "guest", "kind"} <= set(errata["ARM erratum 832075"])
    assert [i["midr"] for i in errata["ARM erratum 832075"]["implementations"]] == ["0x411fd070"]
    assert errata["ARM erratum 1418040"]["log"] == "ARM erratum 1418040"
    assert [i["midr"] for i in errata["ARM erratum 1418040"]["implementations"]] == ["0x413fd0b0"]
    assert errata["ARM erratum 3324349"]["guest"] is True
    assert "Cavium ThunderX2 erratum 219 (PRFM removal)" in errata
    assert "Cavium ThunderX2 erratum 219 (KVM guest sysreg trapping)" not in errata  # hyp mode only
    assert errata["Spectre-BHB"]["kind"] == "mitigation"
    assert errata["Spectre-BHB"]["loop"] == 24
    added = {a["implementation"]["midr"]: a["adds"] for a in document["added_by_each"]}
    assert "ARM erratum 1418040" in added["0x413fd0b0"]
    assert "ARM erratum 832075" in added["0x411fd070"]
    assert "ARM erratum 3324349" not in added["0x414fd0c1"]  # the Cortex-A76 brings it too
    older = {o["implementation"]["midr"]: by_id(o["errata"]) for o in document["older_guests"]}
    assert "ARM erratum 832075" not in older["0x414fd0c1"]
    assert by_id(answer["errata"]).keys() == errata.keys()
    assert "ARM erratum 832075" in document["expected_log"]["detected"]
    assert "Broken broadcast TLBI completion" in document["expected_log"]["detected"]


def test_the_text_answer_shows_the_pool_the_cost_and_older_guests(
    write_json: Callable[[str, Any], Path],
) -> None:
    model = write_json("pool.json", model_json(MODEL_TARGETS))
    result = run_cli("errata", model)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"Pool model {model}: 4 target implementations" in out
    assert 'ARM erratum 832075 [logs "ARM erratum 832075"]' in out
    assert "What each host type alone adds to every guest:" in out
    assert "A guest older than 6.15 reads only its host's MIDR/REVIDR and enables instead:" in out


def test_a_6_12_guest_answers_per_host_only(write_json: Callable[[str, Any], Path]) -> None:
    model = write_json("pool.json", model_json(MODEL_TARGETS))
    answer = json.loads(run_cli("errata", model, "--json", "--guest-kernel", "6.12.117").stdout)
    assert answer["guest_kernel"] == "6.12.117"
    assert answer["guest_kernel_is_default"] is False
    (document,) = answer["inputs"]
    assert document["guest_reads_target_list"] is False
    assert document["errata"] == []
    on_n1 = by_id(
        next(
            o["errata"]
            for o in document["older_guests"]
            if o["implementation"]["midr"] == "0x414fd0c1"
        )
    )
    # Debian's 6.12 carries 4118414 (6.12.94's stable update) in every build.
    assert on_n1["ARM erratum 4193800"]["only_some_kernels"] is None


def test_guest_kernel_answers_as_that_point_release(write_json: Callable[[str, Any], Path]) -> None:
    # Cortex-A725 r0p1: erratum 3821522 reached 7.2 in 7.2.10 (Debian's changelog).
    model = write_json("pool.json", model_json(["0x410fd871"]))
    default = json.loads(run_cli("errata", model, "--json").stdout)
    assert default["guest_kernel"] == "7.3.4"
    assert default["guest_kernel_is_default"] is True
    at = {
        v: by_id(
            json.loads(run_cli("errata", model, "--json", "--guest-kernel", v).stdout)["errata"]
        )
        for v in ("7.2.9", "7.2.10")
    }
    assert "ARM erratum 3821522" in at["7.2.10"]
    assert "ARM erratum 3821522" not in at["7.2.9"]
    text = run_cli("errata", model).stdout
    assert text.startswith("Guest kernel: Debian Linux 7.3.4 (the default: the newest known)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-file.json"], "no-such-file.json: cannot read"),
        (
            ["kvm-7.2-neoverse-n1", "--guest-kernel", "7.2"],
            "guest kernel '7.2' is not known; known: 6.12.94,",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = run_cli("errata", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_a_file_that_is_neither_model_nor_profile_is_exit_2(
    write_json: Callable[[str, Any], Path],
) -> None:
    result = run_cli("errata", write_json("x.json", {"format": "something/else/1"}))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "x.json: format" in result.stderr


def two_profiles(write_json: Callable[[str, Any], Path]) -> list[Path]:
    n1 = profile_json(
        "n1", NEOVERSE_N1_MIDR, NEOVERSE_N1_REGISTERS, all_fields_writable(NEOVERSE_N1_REGISTERS)
    )
    a57 = profile_json(
        "a57", CORTEX_A57_MIDR, CORTEX_A57_REGISTERS, all_fields_writable(CORTEX_A57_REGISTERS)
    )
    return [write_json("n1.json", n1), write_json("a57.json", a57)]


def test_baseline_says_what_each_host_type_adds(
    write_json: Callable[[str, Any], Path], tmp_path: Path
) -> None:
    profiles = two_profiles(write_json)
    result = run_cli("baseline", *profiles, "-o", tmp_path / "model.json")
    assert result.returncode == 0, result.stderr
    a57_line = "  Arm Cortex-A57 r1p0 (MIDR 0x411fd070), REVIDR 0x0, AIDR 0x0: adds "
    assert a57_line in result.stdout
    cost = {
        c["midr"]: c["adds"]
        for c in json.loads(run_cli("baseline", "--json", *profiles).stdout)["errata_cost"]
    }
    assert "ARM erratum 832075" in cost["0x411fd070"]
    assert "ARM erratum 3324349" in cost["0x414fd0c1"]


def test_check_says_what_the_hosts_cpu_types_would_add(
    write_json: Callable[[str, Any], Path],
) -> None:
    _n1, a57 = two_profiles(write_json)
    model = write_json("model.json", model_json([NEOVERSE_N1_MIDR]))
    result = run_cli("check", model, a57, "--json")
    (cost,) = json.loads(result.stdout)["errata_cost"]
    assert cost["midr"] == "0x411fd070"
    assert "ARM erratum 832075" in cost["adds"]
    text = run_cli("check", model, a57).stdout
    assert "Arm Cortex-A57 r1p0 (MIDR 0x411fd070), REVIDR 0x0, AIDR 0x0: adds " in text
