"""render, verify and capability detection against the real QEMU 7.2 (TCG).

Guests stay paused (-S): QMP answers all we ask, and no vCPU burns a core.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import run_cli
from support.qemu import paused_qemu
from support.vmm_pool import three_host_pool

from qemu_errata.files import write_json
from qemu_errata.vmm.dialects import Dialect, VmmCapabilities, missing_capabilities, vmm_config
from qemu_errata.vmm.qmp import qmp_socket, read_capabilities

QEMU = "qemu-system-aarch64"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.json"
    write_json(path, three_host_pool().to_json())
    return path


@pytest.fixture(scope="module")
def rendered_guest(model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """QEMU started from the rendered qemu-tcg arguments."""
    rendered = run_cli("render", model_file, "--vmm", "qemu-tcg", "--qemu-cpu", "neoverse-n1")
    assert rendered.returncode == 0, rendered.stderr
    assert "a TCG guest gets no target implementation list" in rendered.stderr
    guest = ["-smp", "2", *shlex.split(rendered.stdout)]
    with paused_qemu(tmp_path_factory.mktemp("guest"), guest) as socket:
        yield socket


def test_rendered_tcg_guest_presents_the_midr_but_not_the_lowered_fields(
    model_file: Path, rendered_guest: Path
) -> None:
    result = run_cli("verify", model_file, "--qmp", rendered_guest)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Differences from the pool model:"
    assert not any("MIDR" in line for line in lines[1:] if line.startswith("  vCPU"))
    # qemu-tcg cannot lower neoverse-n1's fields to the pool's (the A57's).
    assert "  ID_AA64PFR0_EL1.CSV3: the model sets NI (0x0), the guest has IMP (0x1)" in lines


def test_guest_with_a_wrong_midr_is_reported(model_file: Path, tmp_path: Path) -> None:
    wrong = ["-cpu", "neoverse-n1", "-global", "neoverse-n1-arm-cpu.midr=0x410fd034"]
    with paused_qemu(tmp_path, ["-smp", "2", *wrong]) as socket:
        result = run_cli("verify", model_file, "--qmp", socket)
    assert result.returncode == 1
    assert {
        "  vCPU 0 (/machine/unattached/device[0]) presents Arm Cortex-A53 r0p4 "
        "(MIDR 0x410fd034), which is not a target implementation of the model",
        "  vCPU 1 (/machine/unattached/device[1]) presents Arm Cortex-A53 r0p4 "
        "(MIDR 0x410fd034), which is not a target implementation of the model",
    } <= set(result.stdout.splitlines())


def test_qemu_kvm_is_refused_on_qemu_7_2_naming_what_is_missing(
    model_file: Path, rendered_guest: Path
) -> None:
    result = run_cli("render", model_file, "--vmm", "qemu-kvm", "--qmp", rendered_guest)
    assert result.returncode == 1
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith(
        f"qemu-errata: {rendered_guest}: qemu-kvm is not supported by this "
        f"QEMU; missing: KVM (this QEMU runs without it); machine property "
        f"virt-7.2-machine.impl-cpu; CPU type host-arm-cpu"
    )


def test_capabilities_read_from_qemu_7_2_lack_every_sysreg_property(rendered_guest: Path) -> None:
    config = vmm_config(three_host_pool(), Dialect.QEMU_KVM)

    async def capabilities() -> VmmCapabilities:
        async with qmp_socket(str(rendered_guest)) as monitor:
            return await read_capabilities(monitor, config.cpu_model)

    found = asyncio.run(capabilities())
    assert (found.kvm_enabled, found.machine_type, found.cpu_properties) == (
        False,
        "virt-7.2-machine",
        None,
    )
    assert {"gic-version", "virtualization"} <= found.machine_properties
    missing = missing_capabilities(config, found)
    assert [m for m in missing if "SYSREG_" in m] == [
        f"CPU property host-arm-cpu.{name}" for name, _ in config.cpu_properties
    ]
    assert len(config.cpu_properties) == 28


def test_qemu_tcg_capabilities_are_accepted_or_refused_by_cpu_model(
    model_file: Path, rendered_guest: Path
) -> None:
    accepted = run_cli(
        "render",
        model_file,
        "--vmm",
        "qemu-tcg",
        "--qemu-cpu",
        "cortex-a57",
        "--qmp",
        rendered_guest,
    )
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout.split() == [
        "-cpu",
        "cortex-a57",
        "-global",
        "cortex-a57-arm-cpu.midr=0x411fd070",
    ]
    refused = run_cli(
        "render",
        model_file,
        "--vmm",
        "qemu-tcg",
        "--qemu-cpu",
        "cortex-z9",
        "--qmp",
        rendered_guest,
    )
    assert refused.returncode == 1
    assert refused.stderr.endswith(
        "missing: CPU type cortex-z9-arm-cpu; CPU property cortex-z9-arm-cpu.midr\n"
    )


def test_unreachable_socket_is_bad_input(model_file: Path, tmp_path: Path) -> None:
    result = run_cli("verify", model_file, "--qmp", tmp_path / "none.sock")
    assert result.returncode == 2
    assert result.stderr.startswith(f"qemu-errata: {tmp_path / 'none.sock'}: cannot connect to QMP")
