"""Which VMM decides: a QEMU binary's release row, corrected by the names the binary carries.

Debian's arm64 QEMU 11.1.3 binary carries the C strings "kvm-psci-version" (its CPU
property) and "tolerate_cpreg_only_in_incoming_stream" (the cpreg tolerance's trace event).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qemu_errata.core.vmms import newest_known, vmm_named
from qemu_errata.errors import InputError
from qemu_errata.vmm.discovery import deciding_vmm, vmm_of_binary


def fake_qemu(directory: Path, version: str, names: tuple[str, ...]) -> Path:
    """A script answering --version like QEMU, with ``names`` as C strings after its end."""
    path = directory / "qemu-system-aarch64"
    body = f"#!/bin/sh\necho 'QEMU emulator version {version} (Debian)'\nexit 0\n".encode()
    path.write_bytes(body + b"".join(b"\0" + n.encode() + b"\0" for n in names))
    path.chmod(0o755)
    return path


def test_a_known_release_is_its_row(tmp_path: Path) -> None:
    vmm = vmm_of_binary(fake_qemu(tmp_path, "11.1.3", ()))
    assert vmm == vmm_named("qemu-11.1")
    assert vmm.found_at == str(tmp_path / "qemu-system-aarch64")


def test_an_unknown_release_has_what_its_binary_names(tmp_path: Path) -> None:
    vmm = vmm_of_binary(fake_qemu(tmp_path, "12.0.0", ("kvm-psci-version", "impl-cpu")))
    assert vmm.name == "qemu-12.0"
    assert dict(vmm.firmware_properties) == {"KVM_REG_ARM_PSCI_VERSION": "kvm-psci-version"}
    assert vmm.impl_cpu
    assert not vmm.tolerates_missing_registers
    assert not vmm.sysreg_series


def test_without_an_arm64_qemu_the_newest_known_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.uname", lambda: os.uname_result(("Linux", "h", "7.2", "#1", "x86_64")))
    assert deciding_vmm(None) == newest_known()
    with pytest.raises(InputError, match=r"--vmm qemu-0\.1: unknown VMM \(known: qemu-7\.2, "):
        deciding_vmm("qemu-0.1")
