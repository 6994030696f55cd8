"""The kvm backend's parsing and error paths, with a stand-in for the kernel.

``FakeKvm`` answers the probe's ioctls the way arm64 KVM does (it decodes
the structs, writes answers through their pointers, refuses unknown
registers with ENOENT), from tables; each test changes one thing, such as
an older kernel without an ioctl. The real-kernel run is a separate issue;
the real-device tests are in integration/test_kvm_device.py.
"""

from __future__ import annotations

import errno
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from support.fake_kvm import CATALOGUE, FIRMWARE, ICC_CTLR_EL1, ISAR0_MASK, FakeKvm

from qemu_errata.core.registers_table import Kind
from qemu_errata.errors import ProbeError
from qemu_errata.probe import el0, timer
from qemu_errata.probe import kvm_abi as abi
from qemu_errata.probe.kvm import probe_kvm, read_kvm
from qemu_errata.testbed.sysfs_tree import write_cpu_identity


@pytest.fixture
def kernel() -> FakeKvm:
    return FakeKvm()


def test_reads_every_register_kvm_gives_a_new_vm(kernel: FakeKvm) -> None:
    reading = read_kvm(kernel, CATALOGUE)
    id_names = [r.name for r in CATALOGUE.of_kind(Kind.IDENTITY, Kind.FEATURE, Kind.CACHE)]
    assert list(reading.id_registers) == id_names
    assert reading.id_registers["ID_AA64ISAR0_EL1"] == 0x100010211120
    assert reading.id_registers["MIDR_EL1"] == 0x414FD0C1
    assert reading.firmware_registers == FIRMWARE
    assert reading.gic_registers == {"ICC_CTLR_EL1": ICC_CTLR_EL1}
    assert reading.capabilities == {
        "writable_masks": True,
        "writable_imp_id_regs": True,
        "vgic_v3": True,
    }
    assert reading.not_offered == ()
    assert kernel.open_fds == {}


def test_masks_are_taken_from_each_registers_index(kernel: FakeKvm) -> None:
    masks = read_kvm(kernel, CATALOGUE).writable_masks
    assert masks is not None
    assert masks["ID_AA64ISAR0_EL1"] == ISAR0_MASK
    assert set(masks) == {r.name for r in CATALOGUE.values() if r.kvm_mask_index is not None}
    assert not any(v for name, v in masks.items() if name != "ID_AA64ISAR0_EL1")


def test_vcpu_gets_every_default_feature_the_kernel_has(kernel: FakeKvm) -> None:
    reading = read_kvm(kernel, CATALOGUE)
    assert reading.vcpu_features == ("psci-0.2", "pmu-v3", "sve", "ptrauth")
    assert kernel.vcpu_features == 0b1111100  # bits 2..6


def test_pointer_authentication_needs_both_capabilities(kernel: FakeKvm) -> None:
    del kernel.capabilities[abi.KVM_CAP_ARM_PTRAUTH_GENERIC]
    del kernel.capabilities[abi.KVM_CAP_ARM_SVE]
    reading = read_kvm(kernel, CATALOGUE)
    assert reading.vcpu_features == ("psci-0.2", "pmu-v3")
    assert kernel.vcpu_features == 0b1100


def test_no_dev_kvm(kernel: FakeKvm) -> None:
    kernel.present = False
    with pytest.raises(ProbeError, match=r"^/dev/kvm: not present: no KVM on this host"):
        read_kvm(kernel, CATALOGUE)


def test_kernel_without_mask_ranges_gives_null_masks(kernel: FakeKvm) -> None:
    del kernel.capabilities[abi.KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES]  # Linux < 6.7
    del kernel.capabilities[abi.KVM_CAP_ARM_WRITABLE_IMP_ID_REGS]
    reading = read_kvm(kernel, CATALOGUE)
    assert reading.writable_masks is None
    assert reading.capabilities["writable_masks"] is False
    assert reading.capabilities["writable_imp_id_regs"] is False
    assert abi.KVM_ARM_GET_REG_WRITABLE_MASKS not in kernel.requests
    assert reading.id_registers["ID_AA64ISAR0_EL1"] == 0x100010211120  # the rest still read


@pytest.mark.parametrize("failure", [errno.ENOTTY, errno.EINVAL])
def test_mask_ioctl_missing_or_refused_gives_null_masks(kernel: FakeKvm, failure: int) -> None:
    kernel.failures[abi.KVM_ARM_GET_REG_WRITABLE_MASKS] = failure
    reading = read_kvm(kernel, CATALOGUE)
    assert reading.writable_masks is None
    assert reading.capabilities["writable_masks"] is False
    assert kernel.open_fds == {}


def test_not_an_arm64_kvm(kernel: FakeKvm) -> None:
    kernel.failures[abi.KVM_ARM_PREFERRED_TARGET] = errno.ENOTTY
    with pytest.raises(ProbeError, match=r"^/dev/kvm: not an arm64 KVM"):
        read_kvm(kernel, CATALOGUE)
    assert kernel.open_fds == {}


def test_vcpu_init_refused_names_the_ioctl_and_closes_every_fd(kernel: FakeKvm) -> None:
    kernel.failures[abi.KVM_ARM_VCPU_INIT] = errno.EINVAL
    with pytest.raises(ProbeError, match=r"KVM_ARM_VCPU_INIT \(psci-0.2, .*Invalid argument$"):
        read_kvm(kernel, CATALOGUE)
    assert kernel.open_fds == {}


def test_unexpected_register_error_names_the_register(kernel: FakeKvm) -> None:
    kernel.failures[abi.KVM_GET_ONE_REG] = errno.EFAULT
    with pytest.raises(ProbeError, match="KVM_GET_ONE_REG MIDR_EL1: Bad address"):
        read_kvm(kernel, CATALOGUE)
    assert kernel.open_fds == {}


def test_registers_an_older_kernel_lacks(kernel: FakeKvm) -> None:
    """Firmware registers it lacks are left out; ID registers read as zero, as KVM's RAZ."""
    del kernel.registers[CATALOGUE["KVM_REG_ARM_VENDOR_HYP_BMAP_2"].one_reg_id]  # Linux < 6.15
    del kernel.registers[CATALOGUE["ID_AA64FPFR0_EL1"].one_reg_id]
    reading = read_kvm(kernel, CATALOGUE)
    assert "KVM_REG_ARM_VENDOR_HYP_BMAP_2" not in reading.firmware_registers
    assert reading.firmware_registers["KVM_REG_ARM_PSCI_VERSION"] == 0x10001
    assert reading.id_registers["ID_AA64FPFR0_EL1"] == 0
    assert reading.not_offered == ("ID_AA64FPFR0_EL1", "KVM_REG_ARM_VENDOR_HYP_BMAP_2")


@pytest.mark.parametrize("failure", ["no device", "init refused"])
def test_host_without_vgic_v3(kernel: FakeKvm, failure: str) -> None:
    if failure == "no device":
        kernel.vgic = False  # a GICv2 host: ENODEV
    else:
        kernel.failures[abi.KVM_SET_DEVICE_ATTR] = errno.EBUSY
    reading = read_kvm(kernel, CATALOGUE)
    assert reading.gic_registers == {}
    assert reading.capabilities["vgic_v3"] is False
    assert reading.id_registers["MIDR_EL1"] == 0x414FD0C1
    assert kernel.open_fds == {}


def _sysfs(root: Path, midrs: Mapping[int, int]) -> Path:
    for number, midr in midrs.items():
        write_cpu_identity(root, number, midr)
    return root


def test_profile_of_a_host(
    kernel: FakeKvm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel.registers[CATALOGUE["AIDR_EL1"].one_reg_id] = 0x5
    sysfs = _sysfs(tmp_path / "sys", {0: 0x414FD0C1, 1: 0x414FD0C1})
    device_tree = tmp_path / "device-tree"
    (device_tree / "timer").mkdir(parents=True)
    (device_tree / "timer/compatible").write_bytes(b"arm,armv8-timer\0")
    (device_tree / "timer/clock-frequency").write_bytes((25_000_000).to_bytes(4, "big"))
    monkeypatch.setattr("platform.machine", lambda: "x86_64")  # use the device tree
    data = probe_kvm("n1-rack3-07", sysfs, device_tree, kernel).to_json()
    assert data["host"] == "n1-rack3-07"
    # One implementation: KVM's AIDR (the boot CPU's) is every CPU's.
    assert data["implementations"] == [
        {"midr": "0x414fd0c1", "revidr": "0x0", "aidr": "0x5", "cpus": [0, 1]}
    ]
    assert data["timer_frequency_hz"] == 25_000_000
    assert data["writable_masks"]["ID_AA64ISAR0_EL1"] == f"{ISAR0_MASK:#x}"
    assert data["firmware_registers"]["KVM_REG_ARM_PSCI_VERSION"] == "0x10001"
    assert data["gic_registers"] == {"ICC_CTLR_EL1": f"{ICC_CTLR_EL1:#x}"}
    assert data["provenance"]["backend"] == "kvm"
    assert data["provenance"]["vcpu_features"] == ["psci-0.2", "pmu-v3", "sve", "ptrauth"]


def test_register_kvm_does_not_offer_but_a_guest_reads_at_el0_is_read_here(
    kernel: FakeKvm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DCZID_EL0: KVM neither reads nor writes it, the guest reads the hardware's value."""
    dczid = CATALOGUE["DCZID_EL0"]
    del kernel.registers[dczid.one_reg_id]
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    read_here: list[object] = []

    def hardware(encoding: object) -> int:  # stands in for the mrs this process would run
        read_here.append(encoding)
        return 0x4 if encoding == dczid.encoding else 62_500_000

    monkeypatch.setattr(el0, "read_el0_register", hardware)
    profile = probe_kvm("n1", _sysfs(tmp_path / "sys", {0: 0x414FD0C1}), tmp_path, kernel)
    assert profile.id_registers["DCZID_EL0"] == 0x4
    assert profile.provenance["registers_read_at_el0"] == ["DCZID_EL0"]
    assert profile.timer_frequency_hz == 62_500_000
    assert dczid.encoding in read_here


def test_big_little_host_leaves_aidr_unknown(kernel: FakeKvm, tmp_path: Path) -> None:
    sysfs = _sysfs(tmp_path, {0: 0x412FD050, 1: 0x414FD0B1})
    profile = probe_kvm("phone", sysfs, tmp_path / "no-device-tree", kernel)
    assert [i.aidr for i in profile.implementations] == [None, None]


def test_timer_frequency_from_the_device_tree_or_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    assert timer.read_timer_frequency(tmp_path / "none") == (None, "unknown")
    node = tmp_path / "arch-timer"
    node.mkdir()
    (node / "compatible").write_bytes(b"arm,armv7-timer\0")
    (node / "clock-frequency").write_bytes((100_000_000).to_bytes(4, "big"))
    assert timer.read_timer_frequency(tmp_path) == (100_000_000, f"{node}/clock-frequency")


def test_kvm_and_sysfs_probes_use_only_the_standard_library() -> None:
    """They also run in minimal arm64 guests (python3.11-minimal + libpython3.11-stdlib)."""
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import qemu_errata.commands.probe, qemu_errata.probe.kvm, qemu_errata.probe.sysfs\n"
        "outside = sorted({m.split('.')[0] for m in set(sys.modules) - before}"
        " - set(sys.stdlib_module_names) - {'qemu_errata'})\n"
        "print(','.join(outside))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
