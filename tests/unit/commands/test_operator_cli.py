"""The command line as a first-time operator meets it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.cli import run_cli

from qemu_errata import __version__


def test_version() -> None:
    assert run_cli("--version").stdout == f"qemu-errata {__version__}\n"
    module = subprocess.run(
        [sys.executable, "-m", "qemu_errata", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert module.stdout == f"qemu-errata {__version__}\n"


def test_embedded_profiles_are_usable_by_name() -> None:
    done = run_cli("baseline", "kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Pool of 2 hosts: neoverse-n1-linux-6.12, cortex-a76-linux-6.12")


def test_an_unknown_name_is_bad_input(tmp_path: Path) -> None:
    done = run_cli("baseline", "kvm-6.12-neoverse-n1", "kvm-6.12-nosuch")
    assert done.returncode == 2
    assert done.stderr == "qemu-errata: kvm-6.12-nosuch: cannot read: No such file or directory\n"


def test_a_file_wins_over_an_embedded_name(
    tmp_path: Path, write_json: Callable[[str, Any], Path]
) -> None:
    write_json("kvm-6.12-cortex-a76", "not json")
    done = subprocess.run(
        [str(Path(sys.executable).with_name("qemu-errata")), "show", "kvm-6.12-cortex-a76"],
        capture_output=True,
        check=False,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "kvm-6.12-cortex-a76: not valid JSON" in done.stderr


def test_profiles_lists_every_embedded_profile_with_what_it_is() -> None:
    lines = run_cli("profiles").stdout.splitlines()
    assert lines[0].startswith("Embedded host profiles")
    kvm = [line for line in lines if line.startswith("  kvm-")]
    qemu = [line for line in lines if line.startswith("  qemu-")]
    assert len(kvm) == 18
    assert all("real writable masks" in line for line in kvm)
    assert len(qemu) == 6
    assert all("writable masks unknown" in line for line in qemu)


def test_show_a_model_file(write_json: Callable[[str, Any], Path]) -> None:
    model = write_json(
        "hand.json",
        {
            "format": "qemu-errata/pool-model/1",
            "id_registers": {"ID_AA64MMFR0_EL1": "0x101122"},
            "target_implementations": [{"midr": "0x414fd0c1", "revidr": None, "aidr": None}],
        },
    )
    done = run_cli("show", model)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == [
        "Pool model (written by hand)",
        "Target implementations (1):",
        "  Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1), REVIDR any, AIDR any",
    ]
    assert "    PARANGE: '40' (0x2)" in done.stdout


def test_a_refusal_names_the_odd_one_out() -> None:
    done = run_cli("baseline", "kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a72", "kvm-6.12-cortex-a76")
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == (
        "The odd one out: cortex-a72-linux-6.12 (the others form a pool without it). "
        "`qemu-errata plan` with the same profiles proposes the fewest pools they form."
    )


def test_the_pools_a_refusal_names_are_pools_under_the_deciding_vmm() -> None:
    # Debian 12's QEMU 7.2 gives guests no target implementation list (no -machine
    # impl-cpu): two CPU types form no pool with it, although they do with qemu-kvm.
    names = ("kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a72", "kvm-6.12-cortex-a76")
    done = run_cli("baseline", "--vmm", "qemu-7.2", *names)
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == (
        "No two of these host types form a pool: each needs a pool of its own."
    )
    pair = run_cli("baseline", "--vmm", "qemu-7.2", names[0], names[2])
    assert pair.returncode == 1


def test_the_pools_a_refusal_names_are_the_largest_baseline_accepts() -> None:
    # With qemu-kvm, Neoverse-N1 and Cortex-A76 on 6.12 and 7.2 form one pool of four
    # (each PSCI version and SSBS is written): only the A64FX is left out.
    names = [
        *("kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76", "kvm-6.12-neoverse-n1"),
        *("kvm-6.12-cortex-a76", "kvm-7.3-a64fx"),
    ]
    done = run_cli("baseline", "--vmm", "qemu-kvm", *names)
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1].startswith(
        "The odd one out: a64fx-linux-7.3 (the others form a pool without it)."
    )
    assert run_cli("baseline", "--vmm", "qemu-kvm", *names[:4]).returncode == 0


def test_profiles_without_masks_are_said_once_up_front() -> None:
    done = run_cli("baseline", "qemu-neoverse-n1", "qemu-cortex-a76")
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        "Note: qemu-neoverse-n1, qemu-cortex-a76 were probed without KVM: nothing counts as "
        "writable there"
    )
    assert "(not writable)" not in done.stdout


def test_one_host_is_not_hosts() -> None:
    done = run_cli("baseline", "kvm-6.12-neoverse-n1")
    assert done.stdout.splitlines()[0] == "Pool of 1 host: neoverse-n1-linux-6.12"
    assert "What the pool loses (0 fields):" in done.stdout


def test_nested_help_is_plain_text_and_says_cpu_is_required() -> None:
    text = " ".join(run_cli("nested", "--help").stdout.split())
    assert "``" not in text
    assert ":mod:" not in text
    assert "QEMU CPU model of the nested host (required, except with --rebuild alone)" in text


def test_the_command_is_on_path() -> None:
    link = Path("/usr/local/bin/qemu-errata")
    assert link.resolve().name == "qemu-errata"
    assert link.resolve().parent.name == "bin"
    done = subprocess.run([str(link), "--version"], capture_output=True, text=True, check=False)
    assert done.stdout.startswith("qemu-errata ")
