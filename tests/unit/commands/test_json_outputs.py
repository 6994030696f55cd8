"""Every JSON output has a format key and validates against its shipped schema (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import ValidationError
from support.cli import run_cli
from support.schemas import SCHEMAS, validate

from qemu_errata.core.embedded import embedded_profile_names, load_embedded_profile
from qemu_errata.core.pool import REASONS

N1, A76, A72 = "kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76", "kvm-6.12-cortex-a72"


def output(*arguments: str | Path) -> dict[str, object]:
    done = run_cli(*arguments)
    document = json.loads(done.stdout)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("json") / "pool.json"
    assert run_cli("baseline", N1, A76, "-o", path).returncode == 0
    return path


def test_every_embedded_profile_is_a_valid_host_profile() -> None:
    for name in embedded_profile_names():
        validate(load_embedded_profile(name).to_json(), "host-profile")


def test_a_pool_model_and_its_file(pool: Path) -> None:
    printed = output("baseline", N1, A76, "--json")
    validate(printed, "baseline")
    validate(json.loads(pool.read_text()), "pool-model")
    assert printed["model"] == json.loads(pool.read_text())  # type: ignore[index]


def test_a_refusal_is_a_list_of_objects() -> None:
    refusal = output("baseline", N1, A72, "--json")
    validate(refusal, "baseline-refusal")
    ras = [b for b in refusal["blockers"] if b["field"] == "RAS"]  # type: ignore[index,union-attr]
    assert ras[0]["register"] == "ID_AA64PFR0_EL1"
    assert ras[0]["reason"] == "not-presentable"
    assert ras[0]["values"] == {"neoverse-n1-linux-6.12": "0x1", "cortex-a72-linux-6.12": "0x0"}


def test_check_problems_are_objects(pool: Path) -> None:
    verdict = output("check", pool, A72, "--json")
    validate(verdict, "check")
    reasons = {p["reason"] for p in verdict["problems"]}  # type: ignore[union-attr,index]
    assert {"not-in-target-list", "not-safe"} <= reasons
    validate(output("check", pool, A76, "--json"), "check")


def test_render(pool: Path) -> None:
    for form in ("args", "domain-xml"):
        arguments = ("render", pool, "--vmm", "qemu-tcg", "--qemu-cpu", "neoverse-n1", "--as", form)
        validate(output(*arguments, "--json"), "render")


def test_the_schemas_refuse_what_is_wrong() -> None:
    with pytest.raises(ValidationError):
        validate({"format": "qemu-errata/check/1", "host": "h", "ok": True}, "check")
    with pytest.raises(ValidationError):
        validate({"format": "qemu-errata/pool-model/1", "id_registers": {"X": "12"}}, "pool-model")


def test_every_format_the_commands_print_has_a_schema() -> None:
    assert {"host-profile", "pool-model", "baseline-refusal", "check", "render"} <= set(SCHEMAS)
    assert {"kvm-validation", "errata", "guest-view"} <= set(SCHEMAS)


def test_errata(pool: Path) -> None:
    validate(output("errata", pool, "--json"), "errata")
    validate(output("errata", N1, A72, "--json"), "errata")


def test_the_schema_knows_every_blocker_reason_and_no_other() -> None:
    common = SCHEMAS["common"]["$defs"]["blocker"]["properties"]["reason"]["enum"]
    assert sorted(common) == sorted(REASONS)
