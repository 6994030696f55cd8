"""Rendering a pool model into QEMU arguments, and judging a QEMU's capabilities."""

from __future__ import annotations

import pytest
from support.golden import assert_golden
from support.vmm_pool import TCG_GOLDEN, hand_written_model, three_host_pool

from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import baseline
from qemu_errata.errors import InputError, UnsupportedDialectError
from qemu_errata.vmm.args import commandline_arguments, is_our_argument, qemu_arguments
from qemu_errata.vmm.dialects import Dialect, VmmCapabilities, check_supported, vmm_config


def test_qemu_kvm_arguments_of_the_three_host_pool_golden() -> None:
    config = vmm_config(three_host_pool(), Dialect.QEMU_KVM)
    assert_golden("render-qemu-kvm.args", "\n".join(qemu_arguments(config)))
    assert config.notes == ()


def test_every_lost_field_is_set_to_the_pool_value() -> None:
    model = three_host_pool()
    config = vmm_config(model, Dialect.QEMU_KVM)
    assert dict(config.cpu_properties) == {
        f"SYSREG_{loss.field.register}_{loss.field.arm_spelling}": f"{loss.pool_value:#x}"
        for loss in model.losses
    }


def test_qemu_tcg_presents_the_first_target_and_says_there_is_no_list_golden() -> None:
    config = vmm_config(three_host_pool(), Dialect.QEMU_TCG, qemu_cpu="neoverse-n1")
    assert_golden("render-qemu-tcg.args", "\n".join(qemu_arguments(config)))
    assert commandline_arguments(config) == TCG_GOLDEN[2:]
    assert "a TCG guest gets no target implementation list" in config.notes[0]
    assert "Arm Cortex-A57 r1p0 (MIDR 0x411fd070)" in config.notes[0]
    assert "qemu-tcg sets no ID register field" in config.notes[1]


def test_hand_written_model_sets_every_field_it_gives() -> None:
    config = vmm_config(hand_written_model(0x414FD0C1, 0x413FD0B1), Dialect.QEMU_KVM)
    register = load_catalogue()["ID_AA64ISAR0_EL1"]
    assert dict(config.cpu_properties) == {
        f"SYSREG_ID_AA64ISAR0_EL1_{f.arm_spelling}": f"{f.raw(0x11120):#x}" for f in register.fields
    }
    machine = "impl-cpu.0.midr=0x413fd0b1,impl-cpu.1.midr=0x414fd0c1"
    assert qemu_arguments(config)[-2:] == ["-machine", machine]
    assert any("REVIDR of Arm Neoverse-N1" in note for note in config.notes)


def test_qemu_tcg_needs_a_cpu_model_and_qemu_kvm_refuses_one() -> None:
    model = three_host_pool()
    with pytest.raises(InputError, match="qemu-tcg needs a named CPU model"):
        vmm_config(model, Dialect.QEMU_TCG)
    with pytest.raises(InputError, match="qemu-kvm always uses the host CPU model"):
        vmm_config(model, Dialect.QEMU_KVM, qemu_cpu="neoverse-n1")
    with pytest.raises(InputError, match="not a QEMU CPU model name"):
        vmm_config(model, Dialect.QEMU_TCG, qemu_cpu="a57,midr=0x1")


@pytest.mark.parametrize(
    ("option", "value", "ours"),
    [
        ("-global", "host-arm-cpu.SYSREG_ID_AA64ISAR0_EL1_DP=0x0", True),
        ("-global", "cortex-a57-arm-cpu.midr=0x411fd070", True),
        ("-machine", "impl-cpu.0.midr=0x1,impl-cpu.0.revidr=0x0", True),
        ("-global", "cortex-a57-arm-cpu.pmu=off", False),
        ("-global", "virtio-blk-pci.midr=1", False),
        ("-machine", "gic-version=3", False),
        ("-machine", "impl-cpu.0.midr=0x1,gic-version=3", False),
        ("-qmp", "unix:/tmp/m.sock,server=on,wait=off", False),
    ],
)
def test_our_arguments_are_recognised_by_property_name(option: str, value: str, ours: bool) -> None:
    assert is_our_argument(option, value) is ours


def capabilities(kvm: bool, machine: set[str], cpu: set[str] | None) -> VmmCapabilities:
    return VmmCapabilities(
        kvm,
        "virt-7.2-machine",
        frozenset(machine),
        "host-arm-cpu",
        None if cpu is None else frozenset(cpu),
    )


def test_qemu_kvm_refused_naming_every_missing_property() -> None:
    config = vmm_config(three_host_pool(), Dialect.QEMU_KVM)
    with pytest.raises(UnsupportedDialectError) as refused:
        check_supported(config, capabilities(False, {"gic-version"}, None))
    missing = refused.value.missing
    assert missing[:3] == (
        "KVM (this QEMU runs without it)",
        "machine property virt-7.2-machine.impl-cpu",
        "CPU type host-arm-cpu",
    )
    assert "CPU property host-arm-cpu.SYSREG_ID_AA64ISAR0_EL1_DP" in missing
    assert len(missing) == 3 + len(config.cpu_properties)


def test_qemu_kvm_accepted_where_everything_is_offered() -> None:
    config = vmm_config(three_host_pool(), Dialect.QEMU_KVM)
    offered = {name for name, _ in config.cpu_properties}
    check_supported(config, capabilities(True, {"impl-cpu"}, offered))
    with pytest.raises(UnsupportedDialectError, match=r"SYSREG_ID_AA64MMFR2_EL1_CnP$"):
        check_supported(
            config, capabilities(True, {"impl-cpu"}, offered - {"SYSREG_ID_AA64MMFR2_EL1_CnP"})
        )


def test_a_pool_of_one_host_type_needs_no_property() -> None:
    """One host type: no field differs from any host and one implementation needs no list."""
    model = baseline([load_embedded_profile("kvm-7.2-neoverse-n1")])
    config = vmm_config(model, Dialect.QEMU_KVM)
    assert qemu_arguments(config) == ["-cpu", "host"]
    assert config.machine_properties == ()
    assert config.notes == (
        "the model sets no ID register field: every host presents its own values",
    )


def test_a_hand_written_model_of_one_implementation_gets_no_target_list() -> None:
    config = vmm_config(hand_written_model(0x414FD0C1), Dialect.QEMU_KVM)
    assert config.machine_properties == ()
    assert qemu_arguments(config)[:3] == ["-cpu", "host", "-global"]
