"""What baseline and show say of a fleet: hosts grouped by type, remedies in types that
point to ``plan``."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import run_cli

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.files import write_json

MODELS = ("kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76", "kvm-6.12-cortex-a72", "kvm-6.12-a64fx")


def fleet(tmp_path: Path, models: tuple[str, ...], per_type: int) -> list[Path]:
    """``per_type`` hosts of each model, named ``rack01-<model>-h<N>``."""
    paths = []
    for model in models:
        profile = load_embedded_profile(model)
        short = model.removeprefix("kvm-6.12-")
        for number in range(per_type):
            host: HostProfile = replace(profile, host=f"rack01-{short}-h{number:03}")
            path = tmp_path / f"{host.host}.json"
            write_json(path, host.to_json())
            paths.append(path)
    return paths


def test_a_refused_fleet_is_named_by_type_and_pointed_to_plan(tmp_path: Path) -> None:
    # 12 hosts of 4 types: the remedy talks in types, not in hosts.
    done = run_cli("baseline", *fleet(tmp_path, MODELS, 3))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "The pool of 12 hosts of 4 types (3 hosts like rack01-neoverse-n1-h000, 3 hosts like "
        "rack01-cortex-a76-h000, 3 hosts like rack01-cortex-a72-h000, 3 hosts like "
        "rack01-a64fx-h000) is refused:"
    )
    assert lines[-1] == (
        "The largest pools these host types form (2 each): 3 hosts like "
        "rack01-neoverse-n1-h000 + 3 hosts like rack01-cortex-a76-h000. `qemu-errata plan` "
        "with the same profiles proposes the fewest pools they form."
    )


def test_a_refused_fleets_json_keys_values_by_host_names(tmp_path: Path) -> None:
    # Words name a type "rack01-neoverse-n1-h000 (+2 alike)"; JSON keys are host names.
    done = run_cli("baseline", "--json", *fleet(tmp_path, MODELS, 3))
    assert done.returncode == 1
    keys = {key for blocker in json.loads(done.stdout)["blockers"] for key in blocker["values"]}
    assert keys
    assert keys <= {f"rack01-{m.removeprefix('kvm-6.12-')}-h000" for m in MODELS}


def test_many_types_are_counted_and_pointed_to_plan(tmp_path: Path) -> None:
    # Past 8 types, trying every subset would take long: the remedy counts and points on.
    kernels, cpus = ("6.12", "7.2", "7.3"), ("cortex-a72", "max", "a64fx")
    models = tuple(f"kvm-{kernel}-{cpu}" for kernel in kernels for cpu in cpus)
    done = run_cli("baseline", *fleet(tmp_path, models, 2))
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == (
        "These 18 hosts are of 9 types. `qemu-errata plan` with the same profiles proposes the "
        "fewest pools they form."
    )


def test_show_lists_a_large_pool_type_by_type(tmp_path: Path) -> None:
    model = tmp_path / "pool.json"
    made = run_cli("baseline", *fleet(tmp_path, MODELS[:2], 6), "-o", model)
    assert made.returncode == 0, made.stdout
    lines = run_cli("show", model).stdout.splitlines()
    assert lines[:3] == [
        "Pool model of 12 hosts of 2 types:",
        "  6 hosts like rack01-neoverse-n1-h000: Arm Neoverse-N1 r4p1, Linux 6.12",
        "  6 hosts like rack01-cortex-a76-h000: Arm Cortex-A76 r4p1, Linux 6.12",
    ]
