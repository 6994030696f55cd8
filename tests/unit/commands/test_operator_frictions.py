"""Small frictions a first-time operator met: hints, refusals at read time, missing outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.cli import run_cli

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
