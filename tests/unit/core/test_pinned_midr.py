"""A stable guest MIDR: baseline --pin-midr, check, render."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import run_cli

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import baseline, check, pin_midr
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.errors import IncompatiblePoolError
from qemu_errata.vmm.dialects import Dialect, vmm_config
from qemu_errata.vmm.names import QemuSeries, SysregNames

A76, N1 = 0x414FD0B1, 0x414FD0C1


def profiles(kernel: str = "7.2") -> list[HostProfile]:
    return [load_embedded_profile(f"kvm-{kernel}-{m}") for m in ("neoverse-n1", "cortex-a76")]


def test_the_first_profiles_midr_is_pinned_by_default_and_another_on_request() -> None:
    """The first profile given, not the lowest MIDR of the (sorted) target list."""
    hosts = profiles()
    model = pin_midr(baseline(hosts), hosts)
    assert model.id_registers["MIDR_EL1"] == N1
    assert pin_midr(baseline(hosts[::-1]), hosts[::-1]).id_registers["MIDR_EL1"] == A76
    assert pin_midr(baseline(hosts), hosts, A76).id_registers["MIDR_EL1"] == A76
    assert model.notes[-1].startswith("every guest sees Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1)")


def test_pinning_needs_every_host_to_allow_it_and_a_target_midr() -> None:
    hosts = profiles("6.12")
    with pytest.raises(IncompatiblePoolError) as refused:
        pin_midr(baseline(hosts), hosts)
    assert [str(b) for b in refused.value.blockers] == [
        f"{p.host}: its KVM cannot set the guest's MIDR (no KVM_CAP_ARM_WRITABLE_IMP_ID_REGS)"
        for p in hosts
    ]
    with pytest.raises(IncompatiblePoolError, match="is not a target implementation"):
        pin_midr(baseline(profiles()), profiles(), 0x410FD034)


def test_check_understands_a_pinned_model() -> None:
    hosts = profiles()
    model = pin_midr(baseline(hosts), hosts)
    assert check(model, hosts[0]).ok
    older = load_embedded_profile("kvm-7.2-cortex-a76")
    older = replace(older, capabilities={"writable_imp_id_regs": False})
    problems = [str(p) for p in check(model, older).problems]
    assert problems == [
        "the model pins the guest's MIDR to Arm Neoverse-N1 r4p1 (MIDR 0x414fd0c1), and this "
        "host's KVM cannot set it (no KVM_CAP_ARM_WRITABLE_IMP_ID_REGS)"
    ]


def test_a_pinned_midr_is_rendered_for_v10_and_refused_for_v3() -> None:
    hosts = profiles()
    model = pin_midr(baseline(hosts), hosts)
    config = vmm_config(model, Dialect.QEMU_KVM)
    assert config.cpu_properties[:5] == (
        ("SYSREG_MIDR_EL1_Implementer", "0x41"),
        ("SYSREG_MIDR_EL1_Variant", "0x4"),
        ("SYSREG_MIDR_EL1_Architecture", "0xf"),
        ("SYSREG_MIDR_EL1_PartNum", "0xd0c"),
        ("SYSREG_MIDR_EL1_Revision", "0x1"),
    )
    v3 = vmm_config(model, Dialect.QEMU_KVM, names=SysregNames(QemuSeries.V3))
    assert v3.unsettable[0] == "MIDR_EL1.Implementer"


def test_baseline_pin_midr_option(tmp_path: Path) -> None:
    model = tmp_path / "pinned.json"
    pinned = run_cli(
        "baseline", "kvm-7.2-neoverse-n1", "kvm-7.2-cortex-a76", "--pin-midr", "-o", model
    )
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert '"MIDR_EL1": "0x414fd0c1"' in model.read_text()
    refused = run_cli("baseline", "kvm-6.12-neoverse-n1", "kvm-6.12-cortex-a76", "--pin-midr")
    assert refused.returncode == 1
    assert "its KVM cannot set the guest's MIDR" in refused.stdout
    bad = run_cli("baseline", "kvm-7.2-neoverse-n1", "--pin-midr", "n1")
    assert (bad.returncode, bad.stderr) == (
        2,
        "qemu-errata: --pin-midr n1: not a hexadecimal MIDR\n",
    )
