"""Small frictions a first-time operator met: hints, refusals at read time, missing outputs."""

from __future__ import annotations

import json
import platform
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from support.cli import run_cli
from support.schemas import validate

from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile

HAND_MODEL = {
    "format": "qemu-errata/pool-model/1",
    "id_registers": {"ID_AA64MMFR0_EL1": "0x101122"},
    "target_implementations": [{"midr": "0x414fd0c1", "revidr": None, "aidr": None}],
}


def test_a_mistyped_embedded_name_gets_the_close_one() -> None:
    done = run_cli("show", "kvm-6.12-neoverse-n2")
    assert done.returncode == 2
    assert done.stderr == (
        "qemu-errata: kvm-6.12-neoverse-n2: no such file, nor an embedded profile "
        "(did you mean kvm-6.12-neoverse-n1? `qemu-errata profiles` lists them)\n"
    )


def test_a_name_close_to_none_stays_a_missing_file() -> None:
    done = run_cli("baseline", "kvm-6.12-neoverse-n1", "nosuch")
    assert done.returncode == 2
    assert done.stderr == "qemu-errata: nosuch: cannot read: No such file or directory\n"


def test_an_unknown_register_in_a_hand_written_model_is_refused_when_read(
    write_json: Callable[[str, Any], Path],
) -> None:
    """show and check read the model as render does: a misspelt register is bad input."""
    model = write_json("hand.json", {**HAND_MODEL, "id_registers": {"ID_AA64MMFR0_EL": "0x101122"}})
    expected = (
        f"qemu-errata: {model}: id_registers.ID_AA64MMFR0_EL: not a register qemu-errata "
        "knows (did you mean ID_AA64MMFR0_EL1?)\n"
    )
    for command in (("show", model), ("check", model, "kvm-6.12-neoverse-n1")):
        done = run_cli(*command)
        assert (done.returncode, done.stderr) == (2, expected), command


def test_profiles_json_lists_every_embedded_profile() -> None:
    done = run_cli("profiles", "--json")
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    validate(listing, "profiles")
    entries = {entry["name"]: entry for entry in listing["profiles"]}
    assert list(entries) == list(embedded_profile_names())
    assert entries["kvm-7.2-neoverse-n1"]["cpus"] == ["Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1)"]
    assert entries["kvm-7.2-neoverse-n1"]["writable_masks_known"] is True
    assert entries["qemu-max"]["writable_masks_known"] is False


def test_show_json_decodes_a_profile_and_keeps_it_whole() -> None:
    done = run_cli("show", "kvm-6.12-neoverse-n1", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    validate(shown, "show")
    assert shown["kind"] == "host-profile"
    assert shown["document"] == load_embedded_profile("kvm-6.12-neoverse-n1").to_json()
    ras = [f for f in shown["fields"] if (f["register"], f["field"]) == ("ID_AA64PFR0_EL1", "RAS")]
    assert ras == [
        {
            "register": "ID_AA64PFR0_EL1",
            "field": "RAS",
            "value": "0x1",
            "meaning": ras[0]["meaning"],
            "writable": ras[0]["writable"],
        }
    ]
    assert isinstance(ras[0]["writable"], bool)


def test_show_json_of_a_model_has_no_writable_masks(write_json: Callable[[str, Any], Path]) -> None:
    shown = json.loads(run_cli("show", write_json("hand.json", HAND_MODEL), "--json").stdout)
    validate(shown, "show")
    assert shown["kind"] == "pool-model"
    assert shown["targets"] == ["Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1), REVIDR any, AIDR any"]
    assert {f["writable"] for f in shown["fields"]} == {None}


def test_an_embedded_profile_exports_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "n1.json"
    done = run_cli("profiles", "--export", "kvm-7.2-neoverse-n1", "-o", path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Wrote embedded profile kvm-7.2-neoverse-n1 to {path}.\n"
    shipped = resources.files("qemu_errata").joinpath("data/profiles/kvm-7.2-neoverse-n1.json")
    assert json.loads(path.read_text()) == json.loads(shipped.read_text("utf-8"))
    assert run_cli("show", path).stdout == run_cli("show", "kvm-7.2-neoverse-n1").stdout


def test_export_needs_a_file_and_a_known_name(tmp_path: Path) -> None:
    done = run_cli("profiles", "--export", "kvm-7.2-neoverse-n1")
    assert (done.returncode, done.stderr) == (
        2,
        "qemu-errata: profiles --export kvm-7.2-neoverse-n1: needs -o FILE, the file to write\n",
    )
    done = run_cli("profiles", "--export", "kvm-7.2-nosuch", "-o", tmp_path / "x.json")
    assert done.returncode == 2
    assert done.stderr.startswith("qemu-errata: embedded profile 'kvm-7.2-nosuch': unknown")
    assert not (tmp_path / "x.json").exists()


NOT_ARM64 = pytest.mark.skipif(platform.machine() == "aarch64", reason="needs a non-arm64 machine")


@NOT_ARM64
def test_guest_view_on_another_architecture_points_to_nested(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    assert run_cli("baseline", "kvm-7.2-neoverse-n1", "-o", model).returncode == 0
    done = run_cli("guest-view", model)
    assert (done.returncode, done.stderr) == (
        2,
        f"qemu-errata: guest-view: this is an {platform.machine()} machine, with neither an "
        "arm64 kernel to boot nor an arm64 KVM: `qemu-errata nested --cpu MODEL -- guest-view "
        "...` runs it on a nested arm64 KVM host, whose own kernel is the guest\n",
    )


@NOT_ARM64
def test_probe_and_kvm_validate_on_another_architecture_point_to_nested(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    assert run_cli("baseline", "kvm-7.2-neoverse-n1", "-o", model).returncode == 0
    hint = (
        f"; this is an {platform.machine()} machine: `qemu-errata nested --cpu MODEL -- COMMAND "
        "...` runs a command on a nested arm64 KVM host (QEMU TCG)\n"
    )
    for command in (("probe",), ("kvm-validate", model)):
        done = run_cli(*command)
        assert done.returncode == 2, command
        assert done.stderr.startswith("qemu-errata: /dev/kvm: "), command
        assert done.stderr.endswith(hint), command


def test_one_erratum_and_one_target_are_singular(tmp_path: Path) -> None:
    """Fujitsu A64FX r1p0 matches one erratum of the table (Fujitsu erratum 010001)."""
    profile = run_cli("errata", "kvm-7.2-a64fx")
    assert "Fujitsu A64FX r1p0 (MIDR 0x461f0010), REVIDR 0x0: 1 erratum known for this CPU\n" in (
        profile.stdout
    )
    model = tmp_path / "one.json"
    assert run_cli("baseline", "kvm-7.2-a64fx", "-o", model).returncode == 0
    # Neoverse-N1 r4p1: 3324349 and 4193800 enabled, 1542419 not (CTR_EL0.DIC is 0).
    n1 = run_cli("errata", "kvm-7.2-neoverse-n1").stdout
    assert "(MIDR 0x414fd0c1), REVIDR 0x0: 3 errata known for this CPU, 1 not enabled\n" in n1
    assert f"Pool model {model}: 1 target implementation\n" in run_cli("errata", model).stdout


def test_a_picture_not_named_svg_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    picture = tmp_path / "p.png"
    done = run_cli("plan", "kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76", "--picture", picture)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"qemu-errata: --picture {picture}: the picture is SVG, name it FILE.svg "
        "(`rsvg-convert -o p.png FILE.svg` makes a PNG of it)\n"
    )
    assert list(tmp_path.iterdir()) == []
    svg = tmp_path / "p.SVG"
    assert run_cli("plan", "kvm-7.2-neoverse-n1", "--picture", svg).returncode == 0
    assert svg.read_text().startswith("<svg")
