"""``qemu-errata plan`` as an operator runs it: report, JSON, refusals, scheduler hints."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml
from support.cli import run_cli
from support.schemas import validate

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.record import replace
from qemu_errata.files import write_json

SIX = [
    "kvm-6.12-neoverse-n1",
    "kvm-6.12-cortex-a76",
    "kvm-6.12-cortex-a72",
    "kvm-6.12-cortex-a57",
    "kvm-7.2-neoverse-n1",
    "kvm-6.12-a64fx",
]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_cli("plan", *args)


def test_the_detail_names_types_matrix_pools_and_deciding_fields() -> None:
    done = run(*SIX, "--detail")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "6 hosts of 6 types:"
    assert "  T1: 1 host neoverse-n1-linux-6.12: Arm Neoverse-N1 r4p1, Linux 6.12" in lines
    assert "      T1 T2 T3 T4 T5 T6" in lines
    assert "  T3   x  x  -  1  x  x" in lines
    # The default VMM (the newest known) pins the PSCI version: the 7.2 N1 joins the 6.12 N1.
    assert "Proposed: 3 pools (the fewest possible; exact search over 6 types):" in lines
    assert any(
        re.fullmatch(r"  pool [0-9a-f]{8}: T6 \(1 host\); loses nothing", li) for li in lines
    )
    assert any(
        line.startswith(
            "  T1 + T3: cannot share a pool: ID_AA64PFR0_EL1.RAS, AdvSIMD, FP, "
            "ID_AA64MMFR1_EL1.XNX, VH, VMIDBits differ and are not writable on Linux 6.12; "
        )
        for line in lines
    )
    # A64FX's firmware answers NOT_AVAIL: its guests detect Spectre-v2, v4 and BHB and stay
    # vulnerable (proton-pack.c), which works nothing around; KASLR forces KPTI on.
    assert (
        "    every guest works around: Fujitsu erratum 010001, Kernel page table isolation (KPTI)"
    ) in lines


def test_json_puts_every_host_in_exactly_one_pool() -> None:
    assert "matrix" not in json.loads(run(*SIX, "--json").stdout)  # the pairs: --detail
    done = run(*SIX, "--json", "--detail")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    validate(plan, "plan")
    assert plan["format"] == "qemu-errata/plan/1"
    assert [t["id"] for t in plan["types"]] == ["T1", "T2", "T3", "T4", "T5", "T6"]
    assert len(plan["matrix"]) == 15
    first = plan["matrix"][0]
    assert first["types"] == ["T1", "T2"]
    assert first["compatible"]
    assert first["errata"] == []
    assert {loss["field"] for loss in first["loses"]} == {"SSBS", "PARANGE"}
    hosts = [host for pool in plan["pools"] for host in pool["hosts"]]
    assert sorted(hosts) == sorted(t["hosts"][0] for t in plan["types"])
    assert [pool["types"] for pool in plan["pools"]] == [["T1", "T2", "T5"], ["T3", "T4"], ["T6"]]
    assert "Fujitsu erratum 010001" in plan["pools"][2]["errata"]
    assert "Fujitsu erratum 010001" not in plan["pools"][0]["errata"]
    a72_a57 = next(p for p in plan["matrix"] if p["types"] == ["T3", "T4"])
    assert a72_a57["errata"] == ["ARM erratum 832075", "ARM erratum 834220"]
    assert plan["pools"][0]["model"]["format"] == "qemu-errata/pool-model/1"


def test_a_pool_model_from_the_plan_is_a_model_file_check_accepts(tmp_path: Path) -> None:
    plan = json.loads(run(*SIX, "--json").stdout)
    model = tmp_path / "pool-2.json"
    write_json(model, plan["pools"][1]["model"])
    done = run_cli("check", model, "kvm-6.12-cortex-a57")
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_partition_into_n_pools_is_a_clear_refusal(tmp_path: Path) -> None:
    picture = tmp_path / "plan.svg"
    done = run(*SIX, "--pools", "2", "--picture", picture)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        "qemu-errata: no partition into 2 pools exists (exact search): 3 types cannot share a "
        "pool pairwise: neoverse-n1-linux-6.12 (Arm Neoverse-N1 r4p1, Linux 6.12); "
        "cortex-a72-linux-6.12 (Arm Cortex-A72 r0p3, Linux 6.12); a64fx-linux-6.12 "
        "(Fujitsu A64FX r1p0, Linux 6.12)\n"
    )
    assert not picture.exists()
    as_json = run(*SIX, "--pools", "2", "--json")
    assert as_json.returncode == 1
    refusal = json.loads(as_json.stdout)
    validate(refusal, "plan-refusal")
    assert refusal["message"].startswith("no partition into 2 pools exists")
    # Structured: per pair of the types that cannot share, its blockers, keyed by host name.
    pairs = {frozenset(b["values"]) for b in refusal["blockers"]}
    assert pairs == {
        frozenset({"neoverse-n1-linux-6.12", "cortex-a72-linux-6.12"}),
        frozenset({"neoverse-n1-linux-6.12", "a64fx-linux-6.12"}),
        frozenset({"cortex-a72-linux-6.12", "a64fx-linux-6.12"}),
    }


def test_a_matrix_blocker_is_an_object_like_baseline_s() -> None:
    both = ("kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a72")
    plan = json.loads(run(*both, "--json", "--detail").stdout)
    ras = [b for b in plan["matrix"][0]["blockers"] if b["field"] == "RAS"]
    assert ras[0]["register"] == "ID_AA64PFR0_EL1"
    assert ras[0]["reason"] == "not-presentable"
    assert ras[0]["values"] == {"neoverse-n1-linux-6.12": "0x1", "cortex-a72-linux-6.12": "0x0"}
    assert [len(pool["hosts"]) for pool in plan["pools"]] == [1, 1]


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    picture = tmp_path / "plan.svg"
    missing = run("kvm-6.12-neoverse-n1", tmp_path / "nosuch.json", "--picture", picture)
    assert missing.returncode == 2
    assert (
        missing.stderr
        == f"qemu-errata: {tmp_path}/nosuch.json: cannot read: No such file or directory\n"
    )
    assert not picture.exists()
    zero = run("kvm-6.12-neoverse-n1", "--pools", "0")
    assert (zero.returncode, zero.stderr) == (2, "qemu-errata: --pools 0: needs at least 1 pool\n")
    (tmp_path / "a-file").write_text("")
    unwritable = run("kvm-6.12-neoverse-n1", "--picture", tmp_path / "a-file" / "p.svg")
    assert unwritable.returncode == 2
    assert "p.svg: cannot write" in unwritable.stderr


def fleet_files(tmp_path: Path) -> list[Path]:
    """N1 and A76 on Linux 6.12 and three N1 on Linux 7.2, one with a quote in its name."""
    n1_72 = load_embedded_profile("kvm-7.2-neoverse-n1")
    profiles = [
        load_embedded_profile("kvm-6.12-neoverse-n1"),
        load_embedded_profile("kvm-6.12-cortex-a76"),
        *(replace(n1_72, host=name) for name in ("r1-h1", "r1-h2", "o'brien: #3")),
    ]
    paths = []
    for number, profile in enumerate(profiles):
        path = tmp_path / f"host{number}.json"
        write_json(path, profile.to_json())
        paths.append(path)
    return paths


def test_kubernetes_labels_name_every_pool_a_host_can_serve(tmp_path: Path) -> None:
    files = fleet_files(tmp_path)
    # qemu-7.2 pins no PSCI version: the Linux 7.2 hosts' guests carry PSCI 1.3, which the
    # 6.12 hosts refuse, and it writes no ID register: the N1 and the A76 pool apart too.
    plan = json.loads(run(*files, "--vmm", "qemu-7.2", "--json").stdout)
    n1, a76, n1_72 = (pool["id"] for pool in plan["pools"])
    done = run(*files, "--vmm", "qemu-7.2", "--host-labels", "kubernetes")
    assert done.returncode == 0, done.stderr
    label = "qemu-errata.io/pool-{}".format
    owners = (
        ("neoverse-n1-linux-6.12", n1),
        ("cortex-a76-linux-6.12", a76),
        ("r1-h1", n1_72),
        ("r1-h2", n1_72),
        ("o'brien: #3", n1_72),
    )
    assert done.stdout.splitlines() == [
        f"{host} {label(own)}=true "
        + " ".join(f"{label(p)}-" for p in sorted({n1, a76, n1_72} - {own}))
        for host, own in owners
    ]


def test_kubernetes_labels_remove_the_previous_plan_s_pools(tmp_path: Path) -> None:
    files = fleet_files(tmp_path)
    previous = tmp_path / "plan.json"
    previous.write_text(run(*files, "--vmm", "qemu-7.2", "--json").stdout)
    old = {pool["id"] for pool in json.loads(previous.read_text())["pools"]}
    # With QEMU 11.1 the PSCI version is pinned: the 7.2 N1 hosts join the 6.12 N1's pool.
    done = run(*files, "--vmm", "qemu-11.1", "--previous", previous, "--host-labels", "kubernetes")
    assert done.returncode == 0, done.stderr
    removed = {
        word.removeprefix("qemu-errata.io/pool-").removesuffix("-")
        for line in done.stdout.splitlines()
        for word in line.split()
        if word.endswith("-") and word.startswith("qemu-errata.io/pool-")
    }
    r1_h1 = next(line for line in done.stdout.splitlines() if line.startswith("r1-h1 "))
    assert removed <= old
    assert any(word.endswith("-") for word in r1_h1.split())


def test_the_nova_provider_config_parses_and_has_the_schema_shape(tmp_path: Path) -> None:
    done = run(*fleet_files(tmp_path), "--pools", "2", "--host-labels", "nova")
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    # Nova's provider config schema 1.0 (nova/compute/provider_config.py): meta.schema_version
    # matching ^1.([0-9]|[1-9][0-9]+)$, providers with exactly one identification key (a name
    # of 1-200 characters) and custom traits matching ^[A-Z0-9_]{1,255}$.
    assert set(config) == {"meta", "providers"}
    assert config["meta"] == {"schema_version": "1.0"}
    assert re.fullmatch(r"1.([0-9]|[1-9][0-9]+)", config["meta"]["schema_version"])
    for provider in config["providers"]:
        assert set(provider) == {"identification", "traits"}
        assert list(provider["identification"]) == ["name"]
        assert 1 <= len(provider["identification"]["name"]) <= 200
        assert set(provider["traits"]) == {"additional"}
        for trait in provider["traits"]["additional"]:
            assert re.fullmatch(r"CUSTOM_[A-Z0-9_]{1,248}", trait)
    traits = {p["identification"]["name"]: p["traits"]["additional"] for p in config["providers"]}
    pools = json.loads(run(*fleet_files(tmp_path), "--pools", "2", "--json").stdout)["pools"]
    trait = {h: f"CUSTOM_QEMU_ERRATA_POOL_{p['id'].upper()}" for p in pools for h in p["hosts"]}
    every = set(trait.values())
    assert set(traits) == set(trait)
    assert all(trait[host] in own and set(own) <= every for host, own in traits.items())


def test_profiles_without_masks_get_the_one_note_up_front() -> None:
    done = run("qemu-neoverse-n1", "qemu-cortex-a76", "--detail")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Note: qemu-neoverse-n1, qemu-cortex-a76 were probed without KVM")
    assert (
        "  T1 + T2: cannot share a pool: ID_AA64PFR1_EL1.SSBS, ID_AA64MMFR0_EL1.PARANGE differ"
        " and are not writable on hosts probed without KVM"
    ) in lines
    assert "Note:" not in run("qemu-neoverse-n1", "--json").stdout


def _keeps_out(stdout: str) -> list[str]:
    """Of each reason in the summary, what it says after 'keeps N types (...)'."""
    return [line.rsplit(") ", 1)[1] for line in stdout.splitlines() if ": keeps " in line]


def test_a_reason_counts_the_other_pools_it_keeps_each_type_out_of() -> None:
    """Each type is in one pool: with 2 pools, it is kept out of the one other."""
    names = ("kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76", "kvm-6.12-cortex-a72")
    done = run_cli("plan", *names, "--kernel-upgrade", "7.3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("3 hosts of 3 types in 2 pools ")
    assert _keeps_out(done.stdout) == ["out of the other pool", "out of the other pool"]
    # Six types in four pools: the KVM_REG_ARM_SMCCC_ARCH_WORKAROUND_1 and _3 reason keeps
    # the Cortex-A72 out of one pool (the Neoverse-N1's) and the Neoverse-N1 out of two (the
    # A72's and the A64FX's): three pools over all its types, but no type out of three.
    wider = (*names, "kvm-6.12-cortex-a57", "kvm-6.12-a64fx", "kvm-6.12-max")
    six = run_cli("plan", *wider)
    assert six.stdout.startswith("6 hosts of 6 types in 4 pools ")
    assert _keeps_out(six.stdout)[0] == "out of 1 to 2 other pools each"
