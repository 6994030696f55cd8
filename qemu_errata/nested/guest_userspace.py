"""The busybox of guest-view's guest userspace: Debian's busybox-static (arm64), pinned.

``data/guest-userspace.toml`` pins the package by version, size and sha256. The
first use fetches exactly that package through the private arm64 apt setup of
the nested host's Debian 12 suites (:mod:`.apt`), checks it against the pin, and
keeps its ``bin/busybox`` in the nested cache (``guest-userspace/<sha256>/busybox``);
``qemu-errata nested -- guest-view`` gives guest-view that file (``--busybox``),
from which guest-view assembles the guest's initramfs
(:mod:`qemu_errata.probe.guest_userspace`).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from qemu_errata.core import tables
from qemu_errata.core.data_files import package_toml
from qemu_errata.errors import CatalogueError, ImageBuildError
from qemu_errata.nested.apt import AptRoot, DebFile, debian_repositories
from qemu_errata.nested.image import (
    ARCHIVE_OF,
    USERLAND_SUITES,
    cache_root,
    extract_member,
    locked,
    progress,
)
from qemu_errata.processes import temporary_directory

GUEST_USERSPACE_FORMAT = "qemu-errata/guest-userspace/1"
_PIN = tables.Row(
    {
        "package": tables.Value(str),
        "version": tables.Value(str),
        "suite": tables.Value(str, words=USERLAND_SUITES),
        "filename": tables.Value(str),
        "size": tables.Value(int, bits=40),
        "sha256": tables.Value(str),
        "member": tables.Value(str),
    },
    required=["package", "version", "suite", "filename", "size", "sha256", "member"],
)
GUEST_USERSPACE_FILE = tables.Row(
    {
        "table": tables.Value(dict, row=tables.Row({"format": tables.Value(str)})),
        "busybox": tables.Value(dict, row=_PIN),
    },
    required=["table", "busybox"],
)


@dataclass(frozen=True)
class PinnedPackage:
    """One .deb pinned by version, size and sha256, and the file wanted from it."""

    package: str
    version: str
    suite: str
    filename: str
    size: int
    sha256: str
    member: str


@functools.cache
def busybox_pin() -> PinnedPackage:
    """data/guest-userspace.toml's busybox."""
    document = package_toml("guest-userspace.toml", GUEST_USERSPACE_FILE)
    tables.check(document, GUEST_USERSPACE_FILE, "guest-userspace.toml")
    if document["table"].get("format") != GUEST_USERSPACE_FORMAT:
        raise CatalogueError(f"guest-userspace.toml: format is not {GUEST_USERSPACE_FORMAT!r}")
    return PinnedPackage(**document["busybox"])


def pinned_busybox(root: Path | None = None) -> Path:
    """The pinned busybox executable, fetched and checked at first use."""
    pin = busybox_pin()
    directory = (root or cache_root()) / "guest-userspace" / pin.sha256[:16]
    target = directory / "busybox"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with locked(directory), temporary_directory(".fetch-", directory) as work:
        if target.exists():
            return target
        progress(f"fetching the guest's {pin.package} {pin.version} (pinned)")
        apt_root = (root or cache_root()) / "apt" / "guest-userspace"
        apt = AptRoot(apt_root, debian_repositories((pin.suite,), ARCHIVE_OF))
        apt.update()
        deb = DebFile(pin.package, pin.version, "", pin.filename, pin.size, pin.sha256)
        (path,) = apt.download([deb], work)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if path.stat().st_size != pin.size or digest != pin.sha256:
            raise ImageBuildError(
                f"{path.name}: sha256 {digest} ({path.stat().st_size} bytes) is not the pinned"
                f" {pin.sha256} ({pin.size} bytes)"
            )
        extract_member(path, pin.member, work / "busybox")
        (work / "busybox").replace(target)
    return target
