"""Real kernels as the judge: the kvm probe and kvm-validate on nested arm64 KVM hosts.

Each nested host (a QEMU CPU model booted with Debian's arm64 kernel, see
qemu_errata.nested) is booted twice: once for ``probe --backend kvm``, once
for ``kvm-validate`` of every model made for it: the pool model of the host
alone, the same with one lower-safe field raised above the host's value,
pools shared with other hosts of the same kernel, and one model per
differential candidate (tests/differential.py). ``check``'s verdict on every
register of every model must be the kernel's. Each neoverse-n1 host is booted
once more for ``kvm-validate --run`` of the pool of the embedded
neoverse-n1 and cortex-a76 profiles of its kernel: a guest reads its ID
registers with MRS and must see the pool model, not its host. (Running the
guest for every differential candidate would cost some 25 s per host, five
times a boot.)

By default only neoverse-n1 on Linux 6.12 is booted. The full matrix
(neoverse-n1, cortex-a72, cortex-a76, a64fx and max on Linux 6.12, 7.2 and 7.3,
about 7 minutes) is ``scripts/nested-matrix``, which sets
QEMU_ERRATA_NESTED_MATRIX=1 and prints the counts.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.cli import QEMU_ERRATA
from support.differential import candidates, model_json, refused_by_check

from qemu_errata.core.catalogue import Catalogue, load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import PoolModel, baseline
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.registers_table import Kind, Rule
from qemu_errata.errors import IncompatiblePoolError
from qemu_errata.files import read_model, read_profile

MATRIX_ENVIRONMENT = "QEMU_ERRATA_NESTED_MATRIX"
MATRIX = bool(os.environ.get(MATRIX_ENVIRONMENT))
# The matrix's kernels; scripts/nested-matrix --kernel SERIES narrows it to one.
KERNELS_ENVIRONMENT = "QEMU_ERRATA_NESTED_KERNELS"
MATRIX_KERNELS = tuple(os.environ.get(KERNELS_ENVIRONMENT, "6.12 7.2 7.3").split())
KERNELS = MATRIX_KERNELS if MATRIX else ("6.12",)
CPUS = ("neoverse-n1", "cortex-a72", "cortex-a76", "a64fx", "max") if MATRIX else ("neoverse-n1",)
HOSTS = [(cpu, kernel) for kernel in KERNELS for cpu in CPUS]
# QEMU 7.2's MIDR of each model (target/arm/cpu64.c).
MIDRS = {
    "neoverse-n1": 0x414FD0C1,
    "cortex-a72": 0x410FD083,
    "cortex-a76": 0x414FD0B1,
    "a64fx": 0x461F0010,
    "max": 0x000F0510,
}
POOL_PAIR = ("neoverse-n1", "cortex-a76")
MINIMUM_CANDIDATES = 500
NESTED_TIMEOUT = "600"
SEED = 7


@dataclass
class NestedHost:
    """One nested host: its probed profile and the kernel's verdict on each model made for it."""

    cpu: str
    kernel: str
    directory: Path
    profile: HostProfile
    models: dict[str, PoolModel] = field(default_factory=dict)
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.cpu} on Linux {self.kernel}"

    def add_model(self, name: str, data: dict[str, Any]) -> None:
        path = self.directory / f"{name}.json"
        path.write_text(json.dumps(data))
        self.models[name] = read_model(path)


def nested(cwd: Path, cpu: str, kernel: str, *args: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [
            QEMU_ERRATA,
            "nested",
            "--cpu",
            cpu,
            "--kernel",
            kernel,
            "--timeout",
            NESTED_TIMEOUT,
            "--",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert completed.returncode in (0, 1), completed.stderr
    return completed


def raised_lower_field(profile: HostProfile, catalogue: Catalogue) -> tuple[str, str, int]:
    """A lower-safe field the host lets userspace write, raised by one: (register, field, value)."""
    for name, host in profile.id_registers.items():
        register = catalogue.get(name)
        if register is None or register.kind is not Kind.FEATURE:
            continue
        for fld in register.fields:
            writable = profile.writable_mask(name) & fld.mask == fld.mask
            raw = fld.raw(host)
            if writable and fld.rule is Rule.LOWER and not fld.signed and raw < fld.mask >> fld.lsb:
                return name, fld.name, fld.with_raw(host, raw + 1)
    raise AssertionError(f"{profile.host}: no writable lower-safe field below its maximum")


@pytest.fixture(scope="session")
def nested_hosts(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], NestedHost]:
    """Every host probed, every model validated: two boots per host."""
    catalogue = load_catalogue()
    hosts = {}
    for cpu, kernel in HOSTS:
        directory = tmp_path_factory.mktemp(f"{cpu}-{kernel}")
        nested(directory, cpu, kernel, "probe", "--backend", "kvm", "-o", "profile.json")
        host = NestedHost(cpu, kernel, directory, read_profile(directory / "profile.json"))
        host.add_model("own-pool", baseline([host.profile]).to_json())
        register, _, value = raised_lower_field(host.profile, catalogue)
        own = dict(host.models["own-pool"].id_registers, **{register: value})
        host.add_model("raised", model_json(host.profile, own))
        for index, (name, candidate) in enumerate(candidates(host.profile, catalogue, SEED)):
            host.add_model(f"candidate-{index:04d}", model_json(host.profile, {name: candidate}))
        hosts[cpu, kernel] = host
    for kernel in KERNELS:
        pair = [hosts[cpu, kernel] for cpu in POOL_PAIR if (cpu, kernel) in hosts]
        if len(pair) == len(POOL_PAIR):
            model = baseline([host.profile for host in pair]).to_json()
            for host in pair:
                host.add_model("pool-" + "-".join(POOL_PAIR), model)
    for host in hosts.values():
        completed = nested(
            host.directory,
            host.cpu,
            host.kernel,
            "kvm-validate",
            "--json",
            *(f"{name}.json" for name in host.models),
        )
        for validation in json.loads(completed.stdout)["models"]:
            host.verdicts[Path(validation["model"]).stem] = validation
        print(
            f"\n{host.name}: {len(host.models)} models validated, "
            f"{sum(v['accepted'] for v in host.verdicts.values())} accepted by the kernel"
        )
    return hosts


@pytest.fixture(scope="session")
def guest_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Per kernel: ``kvm-validate --run`` of the embedded profiles' pool on its neoverse-n1 host."""
    runs = {}
    for kernel in KERNELS:
        directory = tmp_path_factory.mktemp(f"guest-run-{kernel}")
        (directory / "pool.json").write_text(json.dumps(embedded_pool(kernel).to_json()))
        completed = nested(
            directory, POOL_PAIR[0], kernel, "kvm-validate", "--json", "--run", "pool.json"
        )
        [runs[kernel]] = json.loads(completed.stdout)["models"]
    return runs


def embedded_pool(kernel: str) -> PoolModel:
    return baseline([load_embedded_profile(f"kvm-{kernel}-{cpu}") for cpu in POOL_PAIR])


def each_host() -> list[Any]:
    return [pytest.param((cpu, kernel), id=f"{cpu}-{kernel}") for cpu, kernel in HOSTS]


@pytest.mark.parametrize("key", each_host())
def test_kvm_probe_reads_the_real_kernel(
    nested_hosts: dict[tuple[str, str], NestedHost], key: tuple[str, str]
) -> None:
    host = nested_hosts[key]
    profile = host.profile

    assert profile.host == f"{host.cpu}-linux-{host.kernel}"
    assert [i.midr for i in profile.implementations] == [MIDRS[host.cpu]]
    assert profile.provenance["kernel"].startswith(f"{host.kernel}.")
    assert profile.writable_masks is not None
    assert profile.writable_mask("ID_AA64ISAR0_EL1") != 0
    assert profile.capabilities["writable_imp_id_regs"] is (host.kernel != "6.12")


@pytest.mark.parametrize("key", each_host())
def test_host_accepts_its_own_pool_model(
    nested_hosts: dict[tuple[str, str], NestedHost], key: tuple[str, str]
) -> None:
    verdict = nested_hosts[key].verdicts["own-pool"]
    assert verdict["accepted"], [r for r in verdict["registers"] if not r["accepted"]]


@pytest.mark.parametrize("key", each_host())
def test_raised_lower_safe_field_is_refused_by_check_and_kernel(
    nested_hosts: dict[tuple[str, str], NestedHost], key: tuple[str, str]
) -> None:
    host = nested_hosts[key]
    register, field_name, _ = raised_lower_field(host.profile, load_catalogue())
    problems = refused_by_check(host.models["raised"], host.profile, load_catalogue())
    refused = [r["register"] for r in host.verdicts["raised"]["registers"] if not r["accepted"]]

    assert problems == {register}, field_name
    assert refused == [register]


@pytest.mark.parametrize("key", each_host())
def test_check_agrees_with_the_kernel_on_every_register(
    nested_hosts: dict[tuple[str, str], NestedHost], key: tuple[str, str]
) -> None:
    host = nested_hosts[key]
    catalogue = load_catalogue()
    disagreements = []
    for name, model in host.models.items():
        verdict = host.verdicts[name]
        kernel = {r["register"] for r in verdict["registers"] if not r["accepted"]}
        ours = refused_by_check(model, host.profile, catalogue)
        for register in sorted(kernel ^ ours):
            entry = next(r for r in verdict["registers"] if r["register"] == register)
            disagreements.append(
                f"{name}: {register} = {entry['value']} (host {entry['host']}, mask "
                f"{host.profile.writable_mask(register):#x}): kernel "
                f"{'refuses (' + entry['reason'] + ')' if register in kernel else 'accepts'}, "
                f"check {'refuses' if register in ours else 'accepts'}"
            )
    print(f"\n{host.name}: {len(host.models)} models, {len(disagreements)} disagreements")

    assert len(host.models) >= MINIMUM_CANDIDATES
    assert not disagreements, "\n".join(disagreements)


@pytest.mark.skipif(not MATRIX, reason=f"full matrix only ({MATRIX_ENVIRONMENT}=1)")
@pytest.mark.parametrize("kernel", MATRIX_KERNELS)
def test_pool_of_neoverse_n1_and_cortex_a76_is_accepted_on_both(
    nested_hosts: dict[tuple[str, str], NestedHost], kernel: str
) -> None:
    name = "pool-" + "-".join(POOL_PAIR)
    for cpu in POOL_PAIR:
        verdict = nested_hosts[cpu, kernel].verdicts[name]
        assert verdict["accepted"], (cpu, [r for r in verdict["registers"] if not r["accepted"]])


@pytest.mark.skipif(
    not MATRIX or "6.12" not in KERNELS, reason=f"full matrix only ({MATRIX_ENVIRONMENT}=1)"
)
def test_some_pair_of_models_cannot_share_a_pool_on_linux_6_12(
    nested_hosts: dict[tuple[str, str], NestedHost],
) -> None:
    refused = {}
    for a, b in itertools.combinations(CPUS, 2):
        profiles = [nested_hosts[a, "6.12"].profile, nested_hosts[b, "6.12"].profile]
        try:
            baseline(profiles)
        except IncompatiblePoolError as error:
            refused[a, b] = [
                f"{blocker.register}.{blocker.field}" if blocker.field else blocker.register
                for blocker in error.blockers
            ]
    print(f"\npairs refused on Linux 6.12: {refused}")

    assert refused
    assert all(blockers for blockers in refused.values())


@pytest.mark.parametrize("kernel", KERNELS)
def test_guest_on_neoverse_n1_sees_the_pool_model_not_its_host(
    guest_runs: dict[str, dict[str, Any]], kernel: str
) -> None:
    catalogue = load_catalogue()
    host = load_embedded_profile(f"kvm-{kernel}-{POOL_PAIR[0]}")
    model = embedded_pool(kernel)
    validation = guest_runs[kernel]
    registers = {r["register"]: r for r in validation["registers"]}
    read = {name: r for name, r in registers.items() if r["guest"] is not None}
    differs = {
        name: (r["value"], r["guest"]) for name, r in read.items() if r["guest"] != r["value"]
    }
    print(f"\nLinux {kernel}: the guest read {len(read)} ID registers; as the model but {differs}")

    assert validation["guest_error"] == ""
    assert len(read) == sum(
        catalogue[name].kvm_mask_index is not None for name in model.id_registers
    )
    for register, field_name in (("ID_AA64PFR1_EL1", "SSBS"), ("ID_AA64MMFR0_EL1", "PARANGE")):
        fld = catalogue[register].field(field_name)
        seen = fld.raw(int(read[register]["guest"], 16))
        assert seen == fld.raw(model.id_registers[register])
        assert seen < fld.raw(host.id_registers[register])  # lowered for the pool
    # Every register reads in the guest as the model (DCZID_EL0, not trapped, included: the
    # probe reads the hardware's value at EL0), but GMID_EL1, UNDEFINED without MTE.
    assert set(differs) <= {"GMID_EL1"}
    assert all(registers[name]["host"] is None for name in differs)
