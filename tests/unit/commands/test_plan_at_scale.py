"""``plan`` at fleet scale: a summary that stays short, host names in JSON, refusals that
name types by their hosts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.cli import run_cli
from support.schemas import validate

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.testbed.fleet import synthetic_fleet, varied_fleet, write_fleet


@pytest.fixture(scope="module")
def hundred_types(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """200 hosts of 100 types: every embedded kvm profile, with timers, PSCI versions and
    lowered ID fields of their own."""
    return write_fleet(tmp_path_factory.mktemp("fleet"), varied_fleet(200, 100))


def test_the_summary_of_a_hundred_types_is_short_and_names_every_pool(
    hundred_types: list[Path],
) -> None:
    done = run_cli("plan", *hundred_types)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) < 60
    assert lines[0].startswith("200 hosts of 100 types in ")
    pools = json.loads(run_cli("plan", *hundred_types, "--json").stdout)["pools"]
    shown = [line for line in lines if line.startswith("  pool ")]
    assert len(shown) == len(pools)
    assert {line.split()[1].rstrip(":") for line in shown} == {pool["id"] for pool in pools}
    # Types are named by their hosts (T ids are defined only by --detail).
    assert not re.search(r"\bT\d+\b", done.stdout)
    assert "Why types are not in another pool:" in lines
    assert any(line.startswith("  timer frequencies differ: keeps ") for line in lines)
    assert lines[-1].startswith("`qemu-errata plan --detail` prints every type")


def test_a_hundred_pools_and_their_moves_stay_short(tmp_path: Path) -> None:
    # Every type a timer of its own: no two can share, 100 pools; planned again with the
    # timers shifted by one type, most hosts change pool.
    n1 = load_embedded_profile("kvm-6.12-neoverse-n1")

    def hosts(shift: int) -> list[HostProfile]:
        return [
            replace(n1, host=f"h{n:03}", timer_frequency_hz=1_000_000 * (n + shift))
            for n in range(1, 101)
        ]

    before = tmp_path / "before"
    previous = tmp_path / "plan.json"
    previous.write_text(run_cli("plan", *write_fleet(before, hosts(0)), "--json").stdout)
    done = run_cli("plan", *write_fleet(tmp_path, hosts(1)), "--previous", previous)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("100 hosts of 100 types in 100 pools")
    assert len(lines) < 60
    assert "  and 84 more pools of 84 hosts in all: " in "\n".join(lines)
    assert any(line.startswith("Hosts that change pool (") for line in lines)


def test_a_loss_line_groups_the_types_that_lose_a_value(tmp_path: Path) -> None:
    # An A76 (SSBS 1) with three N1 types (SSBS 2; two with an ISAR0 field lowered): the
    # pool presents SSBS 1, and the three N1 types that lose SSBS2 are one group.
    n1 = load_embedded_profile("kvm-6.12-neoverse-n1")
    isar0 = load_catalogue()["ID_AA64ISAR0_EL1"]
    value = n1.id_registers[isar0.name]

    def lowered(host: str, field: str) -> HostProfile:
        registers = {**n1.id_registers, isar0.name: isar0.field(field).with_raw(value, 0)}
        return replace(n1, host=host, id_registers=registers)

    a76 = load_embedded_profile("kvm-6.12-cortex-a76")
    profiles = [a76, n1, lowered("no-aes", "AES"), lowered("no-sha2", "SHA2")]
    detail = run_cli("plan", *write_fleet(tmp_path, profiles), "--detail")
    assert detail.returncode == 0, detail.stderr
    assert (
        "ID_AA64PFR1_EL1.SSBS: IMP (0x1), 3 hosts of 3 types (T2, T3, T4) have SSBS2 (0x2)"
    ) in detail.stdout


def test_json_keys_losses_and_blockers_by_host_names(tmp_path: Path) -> None:
    profiles = synthetic_fleet(8, 2)  # N1 and A76, four hosts each
    plan = json.loads(
        run_cli("plan", *write_fleet(tmp_path, profiles), "--json", "--detail").stdout
    )
    validate(plan, "plan")
    hosts = {p.host for p in profiles}
    pool = plan["pools"][0]
    assert pool["loses"], "N1 + A76 lose SSBS and PARANGE"
    for loss in [*pool["loses"], *pool["model"]["losses"], *plan["matrix"][0]["loses"]]:
        assert set(loss["host_values"]) <= hosts


def test_one_pool_refused_names_types_by_hosts_with_structured_blockers(tmp_path: Path) -> None:
    files = write_fleet(tmp_path, varied_fleet(36, 18))
    done = run_cli("plan", *files, "--pools", "1")
    assert done.returncode == 1
    assert not re.search(r"\bT\d+\b", done.stderr)
    assert "types cannot share a pool pairwise: 2 hosts like rack000-h00000 (" in done.stderr
    as_json = run_cli("plan", *files, "--pools", "1", "--json")
    refusal = json.loads(as_json.stdout)
    validate(refusal, "plan-refusal")
    assert refusal["blockers"]
    named = {host for b in refusal["blockers"] for host in b["values"]}
    assert named <= {f.stem for f in files}
