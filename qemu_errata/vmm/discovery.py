"""Which VMM decides: the one ``--vmm`` names, else the arm64 QEMU of this machine, else the
newest the table knows.

Only an arm64 machine's ``qemu-system-aarch64`` can run the pool's KVM guests, so only
there does the local QEMU count. It is recognised by its ``--version`` (the table's
row of that release) and by the property names its binary carries: a build with a
property its release lacks (a distribution backport) is believed over the table. What a
binary file was found to be is remembered in the user's cache (seen_binaries), so only the
first command after QEMU is installed or upgraded asks it.
"""

from __future__ import annotations

import os
import re
import shutil

from qemu_errata.core.vmms import (
    SEARCHED_NAMES,
    Vmm,
    newest_known,
    of_release,
    vmm_named,
    with_offered,
)
from qemu_errata.errors import InputError

QEMU_BINARY = "qemu-system-aarch64"
ARM64_MACHINES = ("aarch64", "arm64")
_VERSION = re.compile(r"QEMU emulator version (\d+)\.(\d+)")
_VERSION_TIMEOUT_SECONDS = 10


def local_qemu_has_cpu(model: str) -> bool:
    """Whether this machine's qemu-system-aarch64 emulates CPU model ``model`` (under TCG,
    on any machine), as its ``-cpu help`` lists them; False without one."""
    binary = shutil.which(QEMU_BINARY)
    if binary is None:
        return False
    import subprocess  # noqa: PLC0415 (start-up: only when a QEMU is asked)

    from qemu_errata import processes  # noqa: PLC0415

    try:
        listing = processes.run(
            [binary, "-cpu", "help"],
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT_SECONDS,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return model in {line.split()[0] for line in listing.splitlines()[1:] if line.strip()}


def deciding_vmm(name: str | None) -> Vmm:
    """``--vmm NAME``'s row; without a name, this machine's QEMU, else the newest known."""
    if name is not None:
        return vmm_named(name)
    return local_vmm() or newest_known()


def local_vmm() -> Vmm | None:
    """The arm64 QEMU of this machine, if it has one that can run KVM guests."""
    if os.uname().machine not in ARM64_MACHINES:
        return None
    path = shutil.which(QEMU_BINARY)
    return None if path is None else vmm_of_binary(path)


def vmm_of_binary(path: str | os.PathLike[str]) -> Vmm:
    """What the QEMU binary at ``path`` can set: its release's row, and what it names (asked
    of the binary once, then remembered for that file: seen_binaries)."""
    from qemu_errata.vmm import seen_binaries  # noqa: PLC0415 (start-up: only with a QEMU)

    version, offered = seen_binaries.sighting(path, lambda: (_release(path), _named_in(path)))
    return vmm_of_release(version, offered, os.fspath(path))


def vmm_of_release(version: tuple[int, int], offered: frozenset[str], found_at: str) -> Vmm:
    """QEMU ``version``'s row (a blank one if the table lacks it), corrected by the names
    that QEMU was seen to offer (its binary's strings, or its properties over QMP)."""
    row = of_release(version)
    if row is None:
        row = Vmm(
            name=f"qemu-{version[0]}.{version[1]}",
            title=f"QEMU {version[0]}.{version[1]}, which the table does not know",
            qemu_version=f"{version[0]}.{version[1]}",
            firmware_properties={},
            sysreg_series="",
            sets_midr=False,
            impl_cpu=False,
            writable_imp_id_regs=False,
            tolerates_missing_registers=False,
            evidence="only the names it offers",
        )
    return with_offered(row, offered, found_at)


def _release(path: str | os.PathLike[str]) -> tuple[int, int]:
    # With ctypes, subprocess and threading: a fifth of check's start-up, only with a QEMU.
    import subprocess  # noqa: PLC0415

    from qemu_errata import processes  # noqa: PLC0415

    try:
        completed = processes.run(
            [os.fspath(path), "--version"],
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise InputError(f"{path}: cannot ask its version: {error}") from None
    match = _VERSION.search(completed.stdout)
    if match is None:
        raise InputError(f"{path}: --version does not name a QEMU version")
    return int(match[1]), int(match[2])


def _named_in(path: str | os.PathLike[str]) -> frozenset[str]:
    """Which of the searched names occur in the binary as C strings (a property's name, the
    tolerance's trace event)."""
    import mmap  # noqa: PLC0415 (start-up: only with a QEMU)

    try:
        with (
            open(path, "rb") as binary,
            mmap.mmap(binary.fileno(), 0, access=mmap.ACCESS_READ) as m,
        ):
            return frozenset(
                name for name in SEARCHED_NAMES if m.find(b"\0" + name.encode() + b"\0") >= 0
            )
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read: {error}") from None
