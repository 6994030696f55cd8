"""Which VMM decides: a QEMU binary's release row, corrected by the names the binary carries,
asked of each binary file once and then remembered in the user's cache.

Debian's arm64 QEMU 11.1.3 binary carries the C strings "kvm-psci-version" (its CPU
property) and "tolerate_cpreg_only_in_incoming_stream" (the cpreg tolerance's trace event).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from qemu_errata.core.vmms import SEARCHED_NAMES, newest_known, vmm_named
from qemu_errata.errors import InputError
from qemu_errata.vmm.discovery import deciding_vmm, vmm_of_binary

PSCI = "kvm-psci-version"
assert PSCI in SEARCHED_NAMES


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where what binaries were found to be is remembered (not the user's own cache)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "qemu-errata" / "qemu-binaries"


def fake_qemu(directory: Path, version: str, names: tuple[str, ...]) -> Path:
    """A script answering --version like QEMU, with ``names`` as C strings after its end; each
    run adds a line to ``runs`` beside it (runs())."""
    path = directory / "qemu-system-aarch64"
    body = (
        "#!/bin/sh\n"
        'echo run >> "$(dirname "$0")/runs"\n'
        f"echo 'QEMU emulator version {version} (Debian 1:{version}+ds-1)'\n"
        "exit 0\n"
    ).encode()
    path.write_bytes(body + b"".join(b"\0" + n.encode() + b"\0" for n in names))
    path.chmod(0o755)
    return path


def runs(qemu: Path) -> int:
    """How many times the fake ``qemu`` ran."""
    counter = qemu.parent / "runs"
    return len(counter.read_text().splitlines()) if counter.exists() else 0


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


def test_a_binary_is_asked_once_then_remembered(tmp_path: Path, cache: Path) -> None:
    qemu = fake_qemu(tmp_path, "12.0.0", (PSCI,))
    first = vmm_of_binary(qemu)
    second = vmm_of_binary(str(qemu))
    assert runs(qemu) == 1
    assert second == first
    assert dict(second.firmware_properties) == {"KVM_REG_ARM_PSCI_VERSION": PSCI}
    assert second.found_at == first.found_at == str(qemu)
    (remembered,) = cache.iterdir()
    assert remembered.name.startswith(str(qemu).replace("/", "%2F") + "-")


def test_a_link_to_a_remembered_binary_is_that_binary(tmp_path: Path) -> None:
    # /usr/bin/qemu-system-aarch64 is often a link (alternatives); its file is what counts.
    qemu = fake_qemu(tmp_path, "11.1.3", ())
    link = tmp_path / "link"
    link.symlink_to(qemu)
    assert vmm_of_binary(qemu) == vmm_of_binary(link) == vmm_named("qemu-11.1")
    assert runs(qemu) == 1
    assert vmm_of_binary(link).found_at == str(link)


def test_an_upgraded_or_touched_binary_is_asked_again_and_replaces_what_was_remembered(
    tmp_path: Path, cache: Path
) -> None:
    qemu = fake_qemu(tmp_path, "11.1.3", ())
    assert vmm_of_binary(qemu) == vmm_named("qemu-11.1")
    fake_qemu(tmp_path, "12.0.0", (PSCI,))  # an upgrade: another size
    assert vmm_of_binary(qemu).name == "qemu-12.0"
    assert runs(qemu) == 2
    status = qemu.stat()
    os.utime(qemu, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    assert vmm_of_binary(qemu).name == "qemu-12.0"
    assert runs(qemu) == 3
    (remembered,) = cache.iterdir()
    assert remembered.name.endswith(f"-{qemu.stat().st_size}-{qemu.stat().st_mtime_ns}.json")


def test_only_the_same_paths_older_binaries_are_forgotten(tmp_path: Path, cache: Path) -> None:
    qemu = fake_qemu(tmp_path, "11.1.3", ())
    escaped = str(qemu).replace("/", "%2F")
    cache.mkdir(parents=True)
    older = cache / f"{escaped}-1-2-3-4.json"
    others = [
        cache / f"{escaped}-1-1-2-3-4.json",  # qemu-system-aarch64-1's
        cache / f"{escaped}x-1-2-3-4.json",
        cache / "%2Fopt%2Fqemu-system-aarch64-1-2-3-4.json",
        cache / f"{escaped}-1-2-3-\uff14.json",  # not a name this package gives a file
    ]
    for path in [older, *others]:
        path.write_text("{}")
    vmm_of_binary(qemu)
    assert sorted(p.name for p in cache.iterdir() if p not in others) == [
        f"{escaped}-{_identity(qemu)}.json"
    ]
    assert all(p.exists() for p in others)


def _identity(path: Path) -> str:
    status = path.stat()
    return f"{status.st_dev}-{status.st_ino}-{status.st_size}-{status.st_mtime_ns}"


def _remembered(cache: Path) -> Path:
    (remembered,) = cache.iterdir()
    return remembered


REMEMBERED = {
    "format": "qemu-errata/qemu-binary/1",
    "searched": sorted(SEARCHED_NAMES),
    "version": [12, 0],
    "offered": [PSCI],
}


@pytest.mark.parametrize(
    "damage",
    [
        "{not json",
        "[12, 0]",
        "",
        json.dumps({**REMEMBERED, "version": [12]}),
        json.dumps({**REMEMBERED, "version": ["12", "0"]}),
        json.dumps({**REMEMBERED, "version": [True, 0]}),
        json.dumps({**REMEMBERED, "version": [12, -1]}),
        json.dumps({**REMEMBERED, "offered": PSCI}),
        json.dumps({**REMEMBERED, "offered": [PSCI, PSCI]}),
        json.dumps({**REMEMBERED, "offered": ["x-unknown-property"]}),
        # Remembered by a release that searched fewer names: it may lack one now searched.
        json.dumps({**REMEMBERED, "searched": [PSCI], "offered": []}),
        json.dumps({**REMEMBERED, "format": "qemu-errata/qemu-binary/0"}),
        json.dumps({**REMEMBERED, "extra": 1}),
    ],
)
def test_a_damaged_memory_is_asked_anew_and_rewritten(
    tmp_path: Path, cache: Path, damage: str
) -> None:
    qemu = fake_qemu(tmp_path, "12.0.0", (PSCI,))
    asked = vmm_of_binary(qemu)
    remembered = _remembered(cache)
    assert json.loads(remembered.read_text()) == REMEMBERED
    remembered.write_text(damage)
    assert vmm_of_binary(qemu) == asked
    assert vmm_of_binary(qemu) == asked
    assert runs(qemu) == 2
    assert json.loads(remembered.read_text()) == REMEMBERED


def _writable_by_others(path: Path) -> None:
    path.chmod(0o666 if path.is_file() else 0o777)


def _group_writable(path: Path) -> None:
    path.chmod(0o664 if path.is_file() else 0o775)


def _owned_by_another_user(path: Path) -> None:
    os.chown(path, 65534, 65534)  # nobody


@pytest.mark.parametrize(
    ("damage", "where"),
    [
        (_writable_by_others, "file"),
        (_writable_by_others, "directory"),
        (_group_writable, "file"),
        (_group_writable, "directory"),
    ]
    + ([(_owned_by_another_user, "file")] if os.geteuid() == 0 else []),
)
def test_a_memory_another_user_could_have_written_is_not_read(
    tmp_path: Path, cache: Path, damage: Callable[[Path], None], where: str
) -> None:
    # Root runs check: a planted file saying that the QEMU has a property it lacks (or
    # lacks one it has) would change its decisions.
    qemu = fake_qemu(tmp_path, "11.1.3", ())
    vmm_of_binary(qemu)
    remembered = _remembered(cache)
    remembered.write_text(json.dumps({**REMEMBERED, "version": [12, 0], "offered": [PSCI]}))
    damage(remembered if where == "file" else cache)
    assert vmm_of_binary(qemu) == vmm_named("qemu-11.1")
    assert runs(qemu) == 2


def test_a_memory_written_under_a_group_writable_umask_is_read_back(
    tmp_path: Path, cache: Path
) -> None:
    qemu = fake_qemu(tmp_path, "11.1.3", ())
    previous = os.umask(0o002)
    try:
        vmm_of_binary(qemu)
    finally:
        os.umask(previous)
    vmm_of_binary(qemu)
    assert runs(qemu) == 1


def test_without_a_writable_cache_the_binary_is_asked_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # a file: no directory below
    qemu = fake_qemu(tmp_path, "11.1.3", ())
    assert vmm_of_binary(qemu) == vmm_of_binary(qemu) == vmm_named("qemu-11.1")
    assert runs(qemu) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "qemu-system-aarch64", "runs"]


def _on(monkeypatch: pytest.MonkeyPatch, machine: str, path: Path) -> None:
    monkeypatch.setattr("os.uname", lambda: os.uname_result(("Linux", "h", "7.2", "#1", machine)))
    monkeypatch.setenv("PATH", f"{path}{os.pathsep}{os.environ['PATH']}")


def test_off_arm64_no_qemu_is_asked_or_remembered(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    qemu = fake_qemu(tmp_path, "12.0.0", (PSCI,))
    _on(monkeypatch, "x86_64", tmp_path)
    assert deciding_vmm(None) == newest_known()
    assert runs(qemu) == 0
    assert not cache.parent.exists()


def test_on_arm64_the_local_qemu_decides_and_is_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    qemu = fake_qemu(tmp_path, "11.1.3", ())
    _on(monkeypatch, "aarch64", tmp_path)
    assert deciding_vmm(None) == deciding_vmm(None) == vmm_named("qemu-11.1")
    assert deciding_vmm(None).found_at == str(qemu)
    assert runs(qemu) == 1
