"""The qemu backend against the real QEMU (7.2 here).

Expected values are QEMU's own (target/arm/cpu64.c, cpu_tcg.c; facts file
section 6). A QEMU run takes a fraction of a second, so each model is probed
once per module and shared.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.registers_table import Kind
from qemu_errata.errors import ProbeError
from qemu_errata.probe.qemu import (
    QEMU_BINARY,
    probe_qemu,
    registers_to_read,
)

MIDR = {  # facts file section 6
    "cortex-a35": 0x411FD040,
    "cortex-a53": 0x410FD034,
    "cortex-a57": 0x411FD070,
    "cortex-a72": 0x410FD083,
    "cortex-a76": 0x414FD0B1,
    "neoverse-n1": 0x414FD0C1,
    "a64fx": 0x461F0010,
    "max": 0x000F0510,
}
QEMU_GENERIC_TIMER_HZ = 62_500_000  # QEMU's default CNTFRQ (a 16 ns tick)


def qemu_children(parent: int) -> list[int]:
    """Live QEMU processes whose parent is ``parent`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == parent and command.startswith("qemu-system") and state != "Z":
            found.append(int(entry.name))
    return found


def on_first_qemu_child(parent: int, action: Callable[[int], None]) -> threading.Thread:
    """Watch for ``parent``'s QEMU child and apply ``action`` to it as soon as it appears."""

    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            children = qemu_children(parent)
            if children:
                action(children[0])
                return
            time.sleep(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# Pure helpers


@pytest.fixture(scope="module")
def probed() -> Iterator[Callable[[str], HostProfile]]:
    profiles: dict[str, HostProfile] = {}

    def probe(model: str) -> HostProfile:
        if model not in profiles:
            profiles[model] = probe_qemu(model)
        return profiles[model]

    yield probe
    assert qemu_children(os.getpid()) == []


@pytest.mark.parametrize("model", sorted(MIDR))
def test_midr_of_each_model(probed: Callable[[str], HostProfile], model: str) -> None:
    profile = probed(model)
    assert profile.host == f"qemu-{model}"
    [implementation] = profile.implementations
    assert (implementation.midr, implementation.revidr, implementation.aidr) == (MIDR[model], 0, 0)
    assert profile.id_registers["MIDR_EL1"] == MIDR[model]
    assert profile.timer_frequency_hz == QEMU_GENERIC_TIMER_HZ
    assert profile.writable_masks is None
    assert profile.capabilities == {}


def test_neoverse_n1_registers(probed: Callable[[str], HostProfile]) -> None:
    profile = probed("neoverse-n1")
    registers = profile.id_registers
    assert registers["ID_AA64ISAR0_EL1"] == 0x0000100010211120  # cpu64.c
    assert registers["ID_AA64MMFR1_EL1"] == 0x0000000010212122
    assert registers["CTR_EL0"] == 0x8444C004
    assert registers["CLIDR_EL1"] == 0x82000023
    pfr0 = load_catalogue()["ID_AA64PFR0_EL1"]
    assert pfr0.field("GIC").raw(registers["ID_AA64PFR0_EL1"]) == 1  # -M virt,gic-version=3
    assert pfr0.field("EL2").raw(registers["ID_AA64PFR0_EL1"]) == 0  # no virtualization=on
    assert set(registers) == {
        r.name for r in registers_to_read(load_catalogue()) if r.kind is not Kind.GIC
    }
    assert profile.gic_registers["ICC_CTLR_EL1"] & 0x700 == 0x400  # PRIbits: 5 bits
    # Not in the CPU model (no MTE, no SME): reported as zero, and said so.
    assert registers["GMID_EL1"] == 0
    assert profile.provenance["not_implemented_read_as_zero"] == ["GMID_EL1", "SMIDR_EL1"]


def test_sve_of_a64fx(probed: Callable[[str], HostProfile]) -> None:
    registers = probed("a64fx").id_registers
    pfr0 = load_catalogue()["ID_AA64PFR0_EL1"]
    assert pfr0.field("SVE").raw(registers["ID_AA64PFR0_EL1"]) == 1
    assert pfr0.field("EL0").raw(registers["ID_AA64PFR0_EL1"]) == 1  # AArch64 only


def test_registers_read_twice_agree(probed: Callable[[str], HostProfile]) -> None:
    """The vCPU's mrs and the gdbstub's register read give the same values (else no profile)."""
    for model in ("neoverse-n1", "max"):
        read_twice = probed(model).provenance["read_twice"]
        assert {"ID_AA64ISAR0_EL1", "ID_AA64MMFR0_EL1", "CTR_EL0", "CNTFRQ_EL0"} <= set(read_twice)
        assert len(read_twice) >= 40
        assert "MIDR_EL1" not in read_twice  # the gdbstub lacks it: checked against QMP instead
    again = probe_qemu("neoverse-n1")
    assert again.to_json() == probed("neoverse-n1").to_json()


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(ProbeError) as raised:
        probe_qemu("cortex-z99")
    assert str(raised.value) == (
        f"QEMU CPU model 'cortex-z99': {QEMU_BINARY} exited with status 1: "
        "unable to find CPU model 'cortex-z99'"
    )
    assert qemu_children(os.getpid()) == []


def test_temporary_directory_with_a_comma(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QEMU options separate with commas: paths in them must be escaped."""
    directory = tmp_path / "a,b"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    assert probe_qemu("cortex-a57").id_registers["MIDR_EL1"] == MIDR["cortex-a57"]


def test_socket_path_too_long_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / ("d" * 120)  # a unix socket path has at most 107 bytes
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    with pytest.raises(ProbeError, match=r"^QEMU CPU model 'cortex-a57': cannot listen in "):
        probe_qemu("cortex-a57")
    assert list(directory.iterdir()) == []


def test_hung_qemu_is_killed_after_the_timeout() -> None:
    stopped: list[int] = []

    def freeze(pid: int) -> None:
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)

    watcher = on_first_qemu_child(os.getpid(), freeze)
    started = time.monotonic()
    with pytest.raises(ProbeError, match=r"QEMU did not finish within 1\.5 s"):
        probe_qemu("neoverse-n1", timeout=1.5)
    watcher.join()
    assert time.monotonic() - started < 5
    assert stopped
    assert not Path(f"/proc/{stopped[0]}").exists()


def _probe_command(*arguments: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qemu_errata", "probe", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_qemu_killed_during_the_probe(tmp_path: Path) -> None:
    output = tmp_path / "n1.json"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    command = _probe_command(
        "--backend",
        "qemu",
        "--qemu-cpu",
        "neoverse-n1",
        "-o",
        str(output),
        env={**os.environ, "TMPDIR": str(temporary)},
    )
    killed: list[int] = []

    def kill(pid: int) -> None:
        os.kill(pid, signal.SIGSTOP)  # hold it mid-probe, then kill it
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    on_first_qemu_child(command.pid, kill).join()
    _, stderr = command.communicate(timeout=30)
    assert killed, "QEMU was never seen"
    assert command.returncode == 2
    assert stderr == (
        f"qemu-errata: QEMU CPU model 'neoverse-n1': {QEMU_BINARY} killed by SIGKILL\n"
    )
    assert not output.exists()
    assert list(temporary.iterdir()) == []  # its private directory is gone too
    assert not Path(f"/proc/{killed[0]}").exists()


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qemu_errata", *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_probe_then_baseline_end_to_end(tmp_path: Path) -> None:
    """Two N1 hosts form a pool; an N1 and an A76 do not, since QEMU shows no writable
    masks (nothing writable) and their PARange and SSBS differ."""
    hosts = {"n1-a": "neoverse-n1", "n1-b": "neoverse-n1", "a76": "cortex-a76"}
    for host, model in hosts.items():
        result = _run(
            "probe",
            "--backend",
            "qemu",
            "--qemu-cpu",
            model,
            "--host",
            host,
            "-o",
            str(tmp_path / f"{host}.json"),
        )
        assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "n1-a.json").read_text())["host"] == "n1-a"

    pool_path = tmp_path / "pool.json"
    result = _run(
        "baseline", str(tmp_path / "n1-a.json"), str(tmp_path / "n1-b.json"), "-o", str(pool_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pool = json.loads(pool_path.read_text())
    assert pool["hosts"] == ["n1-a", "n1-b"]
    assert [t["midr"] for t in pool["target_implementations"]] == ["0x414fd0c1"]
    assert pool["id_registers"]["ID_AA64ISAR0_EL1"] == "0x100010211120"
    assert pool["timer_frequency_hz"] == QEMU_GENERIC_TIMER_HZ

    result = _run("baseline", str(tmp_path / "n1-a.json"), str(tmp_path / "a76.json"))
    assert result.returncode == 1
    assert "ID_AA64MMFR0_EL1.PARANGE differs" in result.stdout
    assert result.stdout.startswith("Note: n1-a, a76 were probed without KVM: nothing counts as")


def test_probe_prints_the_profile_without_output_file() -> None:
    command = _probe_command("--backend", "qemu", "--qemu-cpu", "cortex-a57", "--host", "a57-lab")
    stdout, stderr = command.communicate(timeout=60)
    assert command.returncode == 0, stderr
    printed = json.loads(stdout)
    assert printed["host"] == "a57-lab"
    assert printed["id_registers"]["MIDR_EL1"] == "0x411fd070"
