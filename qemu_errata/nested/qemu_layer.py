"""Debian's arm64 QEMU for the nested host: a cpio layer appended to the base initramfs.

Commands that run a real QEMU under the nested host's KVM (``qemu-check``)
need ``qemu-system-aarch64`` inside. It comes from Debian unstable at a
pinned version (:data:`QEMU_VERSION`: the QEMU this project checks its
renders against), with the dependencies apt resolves for it there. Only the
program and the shared libraries it loads (followed through ``DT_NEEDED``,
:mod:`.elf`) go in, under ``/opt/qemu``, with the C library of the same
suite: ``/usr/bin/qemu-system-aarch64`` runs it through that library's
loader, so the nested host's own Python keeps its C library.

The layer is cached apart from the kernel images (``images/qemu/``), so the
base images and their keys do not change; it is keyed and recorded like
them (``manifest.json``: every package version).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qemu_errata import processes
from qemu_errata.core.words import byte_size, plural
from qemu_errata.cpio import CpioWriter
from qemu_errata.errors import ImageBuildError
from qemu_errata.nested.apt import AptRoot, DebFile, debian_repositories
from qemu_errata.nested.elf import library_closure
from qemu_errata.nested.image import cache_root, install, locked, progress
from qemu_errata.processes import temporary_directory

LAYER_FORMAT = "qemu-errata/nested-qemu-layer/1"
QEMU_PACKAGE = "qemu-system-arm"
# Debian's newest QEMU when this was written; sid drops a version once it has a newer
# one, so a build then fails naming this pin, which is then moved on on purpose.
QEMU_VERSION = "1:11.1.3+ds-1"
QEMU_SUITES = ("sid",)
_ARCHIVE_OF = {"sid": "bookworm"}
PROGRAM = "usr/bin/qemu-system-aarch64"
PREFIX = "opt/qemu"
_LIBRARY_DIRECTORIES = ("usr/lib/aarch64-linux-gnu", "lib/aarch64-linux-gnu", "usr/lib", "lib")
_LOADER = "ld-linux-aarch64.so.1"
WRAPPER = f"""\
#!/bin/sh
# Debian's QEMU {QEMU_VERSION} with the libraries of its own suite (see qemu_layer.py).
exec /{PREFIX}/lib/{_LOADER} --library-path /{PREFIX}/lib /{PREFIX}/bin/qemu-system-aarch64 "$@"
"""
BUILDER = hashlib.sha256(
    json.dumps([LAYER_FORMAT, WRAPPER, _LIBRARY_DIRECTORIES]).encode()
).hexdigest()[:16]


@dataclass(frozen=True)
class QemuLayer:
    """A built layer: its archive and what it was built from."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def archive(self) -> Path:
        return self.directory / "qemu.cpio"

    def describe(self) -> str:
        return f"QEMU {self.manifest['qemu_version']} (layer {self.manifest['key']})"


def load_layer(root: Path | None = None) -> QemuLayer:
    """The cached QEMU layer, built first when there is none."""
    layers = (root or cache_root()) / "images" / "qemu"
    layer = _current(layers)
    if layer is not None:
        return layer
    with locked(layers):
        return _current(layers) or _build(layers)


def rebuild_layer(root: Path | None = None) -> QemuLayer:
    layers = (root or cache_root()) / "images" / "qemu"
    with locked(layers):
        return _build(layers)


def _current(layers: Path) -> QemuLayer | None:
    directory = layers / "current"
    try:
        manifest = json.loads((directory / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    layer = QemuLayer(directory.resolve(), manifest)
    if manifest.get("builder") != BUILDER or manifest.get("qemu_version") != QEMU_VERSION:
        return None
    return layer if layer.archive.is_file() else None


def _build(layers: Path) -> QemuLayer:
    started = time.monotonic()
    progress(f"building the QEMU {QEMU_VERSION} layer in {layers} (once per version)")
    apt = AptRoot(
        layers.parent.parent / "apt" / "qemu", debian_repositories(QEMU_SUITES, _ARCHIVE_OF)
    )
    progress(f"updating the arm64 package lists of {', '.join(QEMU_SUITES)}")
    apt.update()
    debs = apt.resolve_with_dependencies([f"{QEMU_PACKAGE}={QEMU_VERSION}"])
    if not any(deb.package == QEMU_PACKAGE for deb in debs):
        raise ImageBuildError(f"apt: {QEMU_PACKAGE} {QEMU_VERSION} is not in {QEMU_SUITES}")
    key = _cache_key(debs)
    with temporary_directory(".build-", layers) as work:
        (work / "debs").mkdir()
        size = sum(deb.size for deb in debs)
        progress(f"downloading {plural(len(debs), 'package')} ({byte_size(size)})")
        paths = apt.download(debs, work / "debs")
        root = work / "root"
        root.mkdir()
        for path in paths:
            _unpack(path, root)
        layer = work / "layer"
        layer.mkdir()
        files = library_closure(PROGRAM, _reader(root), _LIBRARY_DIRECTORIES)
        carried = write_layer(root, files, layer / "qemu.cpio")
        manifest = {
            "format": LAYER_FORMAT,
            "key": key,
            "builder": BUILDER,
            "qemu_package": QEMU_PACKAGE,
            "qemu_version": QEMU_VERSION,
            "packages": {deb.package: deb.version for deb in debs},
            "files": len(files),
            "bytes": carried,
            "built": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (layer / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        install(layer, layers, key)
    result = _current(layers)
    if result is None:
        raise ImageBuildError(f"{layers}: the layer just built is not readable")
    progress(f"built in {time.monotonic() - started:.0f} s ({carried / 1e6:.0f} MB of files)")
    return result


def _cache_key(debs: list[DebFile]) -> str:
    identity = {
        "format": LAYER_FORMAT,
        "debs": sorted([deb.package, deb.version, deb.sha256] for deb in debs),
        "builder": BUILDER,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _unpack(deb: Path, root: Path) -> None:
    completed = processes.run(
        ["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise ImageBuildError(f"{deb.name}: cannot unpack: {completed.stderr.strip()}")


def _reader(root: Path) -> Callable[[str], bytes | None]:
    def read(path: str) -> bytes | None:
        file = root / path
        return file.read_bytes() if file.is_file() else None

    return read


def write_layer(root: Path, files: list[str], destination: Path) -> int:
    """The layer's archive: the program and its libraries under PREFIX, and the wrapper.

    Libraries are written as files under the name they are needed by (the
    package's symbolic links resolved). Returns the bytes of files written.
    """
    written = 0
    with destination.open("wb") as stream:
        archive = CpioWriter(stream)
        for directory in ("opt", PREFIX, f"{PREFIX}/bin", f"{PREFIX}/lib"):
            archive.directory(directory)
        program, *libraries = files
        for path, where in [(program, "bin"), *((library, "lib") for library in libraries)]:
            data = (root / path).read_bytes()
            archive.file(f"{PREFIX}/{where}/{Path(path).name}", data, 0o755)
            written += len(data)
        archive.file(PROGRAM, WRAPPER.encode(), 0o755)
        archive.close()
    return written
