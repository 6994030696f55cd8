"""The nested host's boot files: an arm64 kernel Image and a base initramfs, cached.

The base initramfs is busybox, the C library and Debian 12's Python 3.11,
unpacked from arm64 .debs, plus an /init that runs the request of each boot
(:mod:`qemu_errata.nested.guest`) and powers off. The qemu-errata package is
not in it: each run appends it with the request (see
:mod:`qemu_errata.nested.boot`), so code changes never stale the cache.

Every build resolves the newest available version of each package (Debian
replaces security and sid versions, so pins would break) and keys the cache
on the resolved versions and file hashes; ``manifest.json`` records them.
Images live under ``$QEMU_ERRATA_NESTED_CACHE`` (default
``/var/cache/qemu-errata/nested``) as ``images/<series>/<key>/``, with
``images/<series>/current`` pointing at the one in use.
"""

from __future__ import annotations

import compileall
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qemu_errata import processes
from qemu_errata.core.words import byte_size
from qemu_errata.cpio import CpioWriter
from qemu_errata.errors import ImageBuildError, InputError
from qemu_errata.nested.apt import AptRoot, DebFile, debian_repositories
from qemu_errata.processes import temporary_directory

MANIFEST_FORMAT = "qemu-errata/nested-image/1"
CACHE_ENVIRONMENT = "QEMU_ERRATA_NESTED_CACHE"
DEFAULT_CACHE = Path("/var/cache/qemu-errata/nested")
# Python of the nested host: the same minor version as ours, so that the
# bytecode compiled here is valid there.
PYTHON = "python3.11"
USERLAND_SUITES = ("bookworm", "bookworm-updates", "bookworm-security")
USERLAND_PACKAGES = (
    "busybox-static",
    "libc6",
    "libexpat1",
    "libffi8",
    f"lib{PYTHON}-minimal",
    f"lib{PYTHON}-stdlib",
    f"{PYTHON}-minimal",
    "zlib1g",
)
# Unpacked but not needed to run Python programs: documentation, locales,
# iconv modules.
_PRUNED = ("usr/share", "usr/lib/aarch64-linux-gnu/gconv")
# At offset 56 of every arm64 kernel Image (Documentation/arch/arm64/booting).
_IMAGE_MAGIC_OFFSET = 56
_IMAGE_MAGIC = b"ARM\x64"

INIT_SCRIPT = """\
#!/bin/sh
# /init of the qemu-errata nested host: mount the kernel's file systems, run
# the request appended to the initramfs, power off (QEMU then exits).
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PYTHONDONTWRITEBYTECODE=1
/usr/bin/python3.11 -m qemu_errata.nested.guest
/bin/busybox poweroff -f
"""


# What, besides the packages, makes an image: images made otherwise are rebuilt.
BUILDER = hashlib.sha256(
    json.dumps([MANIFEST_FORMAT, INIT_SCRIPT, USERLAND_PACKAGES, _PRUNED]).encode()
).hexdigest()[:16]


@dataclass(frozen=True)
class KernelSeries:
    """Where one kernel series comes from and where its raw Image is in the package."""

    name: str
    suites: tuple[str, ...]
    # Matches the package name; group "release" is the kernel release (uname -r).
    package: re.Pattern[str]
    image_path: str


KERNELS = {
    "6.12": KernelSeries(
        name="6.12",
        suites=("bookworm-security",),
        package=re.compile(r"linux-image-(?P<release>6\.12\.\d+\+deb\d+-arm64)-unsigned"),
        image_path="boot/vmlinuz-{release}",
    ),
    "7.2": KernelSeries(
        name="7.2",
        suites=("sid",),
        package=re.compile(r"linux-binary-unsigned-(?P<release>7\.2\.\d+\+deb\d+-arm64)"),
        image_path="usr/lib/modules/{release}/vmlinuz.unsigned",
    ),
    "7.3": KernelSeries(
        name="7.3",
        suites=("trixie-backports",),
        package=re.compile(r"linux-binary-unsigned-(?P<release>7\.3\.\d+\+deb\d+-arm64)"),
        image_path="usr/lib/modules/{release}/vmlinuz.unsigned",
    ),
}
DEFAULT_KERNEL = "6.12"
# The unstable suite and trixie-backports are not configured on a Debian 12
# machine; they live in the same archive as bookworm.
ARCHIVE_OF = {"sid": "bookworm", "trixie-backports": "bookworm"}


@dataclass(frozen=True)
class NestedImage:
    """A built kernel Image and base initramfs, and what they were built from."""

    directory: Path
    manifest: dict[str, Any]

    @property
    def kernel(self) -> Path:
        return self.directory / "Image"

    @property
    def initramfs(self) -> Path:
        return self.directory / "initramfs.cpio"

    @property
    def kernel_release(self) -> str:
        return str(self.manifest["kernel_release"])

    def describe(self) -> str:
        """One line naming the kernel and the package versions."""
        packages = ", ".join(
            f"{name} {version}" for name, version in self.manifest["packages"].items()
        )
        return f"Linux {self.kernel_release} (image {self.manifest['key']}: {packages})"


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENVIRONMENT) or DEFAULT_CACHE)


def kernel_series(name: str) -> KernelSeries:
    try:
        return KERNELS[name]
    except KeyError:
        known = ", ".join(KERNELS)
        raise InputError(f"--kernel {name}: unknown kernel series (known: {known})") from None


# A cold build of the Linux 7.2 image on a 2-core machine, downloads included (2026-12).
MEASURED_BUILD = ("7.2", 8.8)


def build_time(root: Path | None = None) -> str:
    """How long building an image takes, measured: by this cache's own builds if it has any
    (``build_seconds`` of their manifests, the longest), else MEASURED_BUILD."""
    measured = []
    for path in sorted((root or cache_root()).glob("images/*/current/manifest.json")):
        try:
            manifest = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        seconds, series = manifest.get("build_seconds"), manifest.get("kernel_series")
        if isinstance(seconds, int | float) and isinstance(series, str):
            measured.append((seconds, series))
    if measured:
        seconds, series = max(measured)
        return f"the Linux {series} image took {seconds:.0f} s to build here"
    series, seconds = MEASURED_BUILD
    return f"a Linux {series} image took {seconds:.0f} s to build on a 2-core machine"


def cached_image(series: KernelSeries, root: Path | None = None) -> NestedImage | None:
    """The cached image of ``series``, or None when loading it would need a build."""
    return _current((root or cache_root()) / "images" / series.name)


def load_image(series: KernelSeries, root: Path | None = None) -> NestedImage:
    """The cached image of ``series``, built first when there is none."""
    images = (root or cache_root()) / "images" / series.name
    image = _current(images)
    if image is not None:
        return image
    with locked(images):
        return _current(images) or _build(series, images)


def rebuild_image(series: KernelSeries, root: Path | None = None) -> NestedImage:
    """Resolve the newest packages again and build the image from scratch."""
    images = (root or cache_root()) / "images" / series.name
    with locked(images):
        return _build(series, images)


def _current(images: Path) -> NestedImage | None:
    directory = images / "current"
    try:
        manifest = json.loads((directory / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    image = NestedImage(directory.resolve(), manifest)
    built_here = manifest.get("builder") == BUILDER
    if not (built_here and image.kernel.is_file() and image.initramfs.is_file()):
        return None
    return image


@contextlib.contextmanager
def locked(images: Path) -> Iterator[None]:
    """One build at a time per series, across processes."""
    try:
        images.mkdir(parents=True, exist_ok=True)
        lock = (images.parent / f"{images.name}.lock").open("w")
    except OSError as error:
        raise ImageBuildError(
            f"{images}: cannot use the cache: {error.strerror} (set {CACHE_ENVIRONMENT})"
        ) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def progress(message: str) -> None:
    """A step of a build, on stderr: a cold build takes tens of seconds."""
    print(f"qemu-errata nested: {message}", file=sys.stderr, flush=True)


def _build(series: KernelSeries, images: Path) -> NestedImage:
    started = time.monotonic()
    progress(f"building the Linux {series.name} host image in {images} (once per version)")
    apt_roots = images.parent.parent / "apt"
    userland = AptRoot(apt_roots / "bookworm", debian_repositories(USERLAND_SUITES, ARCHIVE_OF))
    progress(f"updating the arm64 package lists of {', '.join(USERLAND_SUITES)}")
    userland.update()
    kernels = userland
    if any(suite not in USERLAND_SUITES for suite in series.suites):
        kernels = AptRoot(apt_roots / series.name, debian_repositories(series.suites, ARCHIVE_OF))
        progress(f"updating the arm64 package lists of {', '.join(series.suites)}")
        kernels.update()
    kernel_package, release = newest_kernel(series, kernels.package_names())
    (kernel_deb,) = kernels.resolve([kernel_package])
    userland_debs = userland.resolve(USERLAND_PACKAGES)
    key = _cache_key(series, [kernel_deb, *userland_debs])
    with temporary_directory(".build-", images) as work:
        (work / "debs").mkdir()
        for deb in [kernel_deb, *userland_debs]:
            progress(f"downloading {deb.package} {deb.version} ({byte_size(deb.size)})")
        (kernel_path,) = kernels.download([kernel_deb], work / "debs")
        userland_paths = userland.download(userland_debs, work / "debs")
        image = work / "image"
        image.mkdir()
        progress(f"unpacking the kernel {release} and writing the initramfs")
        _extract_kernel(kernel_path, series.image_path.format(release=release), image / "Image")
        _write_initramfs(userland_paths, work / "root", image / "initramfs.cpio")
        manifest = {
            "format": MANIFEST_FORMAT,
            "key": key,
            "builder": BUILDER,
            "kernel_series": series.name,
            "kernel_release": release,
            "packages": {deb.package: deb.version for deb in [kernel_deb, *userland_debs]},
            "built": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "build_seconds": round(time.monotonic() - started, 1),
        }
        (image / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        install(image, images, key)
    result = _current(images)
    if result is None:
        raise ImageBuildError(f"{images}: the image just built is not readable")
    progress(f"built in {time.monotonic() - started:.0f} s")
    return result


def newest_kernel(series: KernelSeries, names: Sequence[str]) -> tuple[str, str]:
    """The package name and kernel release of the newest kernel of the series."""
    candidates = []
    for name in names:
        match = series.package.fullmatch(name)
        if match:
            numbers = tuple(int(n) for n in re.findall(r"\d+", match["release"]))
            candidates.append((numbers, name, match["release"]))
    if not candidates:
        raise ImageBuildError(
            f"apt: no arm64 package of Linux {series.name} in {', '.join(series.suites)}"
        )
    _, name, release = max(candidates)
    return name, release


def _cache_key(series: KernelSeries, debs: Sequence[DebFile]) -> str:
    identity = {
        "format": MANIFEST_FORMAT,
        "series": series.name,
        "debs": sorted([deb.package, deb.version, deb.sha256] for deb in debs),
        "builder": BUILDER,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _extract_kernel(deb: Path, member: str, destination: Path) -> None:
    """Copy the raw Image out of the kernel package without unpacking the modules."""
    extract_member(deb, member, destination)
    with destination.open("rb") as image:
        image.seek(_IMAGE_MAGIC_OFFSET)
        if image.read(len(_IMAGE_MAGIC)) != _IMAGE_MAGIC:
            raise ImageBuildError(f"{deb.name}: {member} is not a raw arm64 Image")


def extract_member(deb: Path, member: str, destination: Path) -> None:
    """Copy one file out of a package (ImageBuildError when it has no such file)."""
    command = ["dpkg-deb", "--fsys-tarfile", str(deb)]
    process = processes.start(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    found = False
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
            for entry in archive:
                if entry.name.removeprefix("./") == member and entry.isfile():
                    source = archive.extractfile(entry)
                    assert source is not None
                    with destination.open("wb") as target:
                        shutil.copyfileobj(source, target)
                    found = True
                    break
    finally:
        process.kill()
        process.wait()
    if not found:
        raise ImageBuildError(f"{deb.name}: no {member} in the package")


def _write_initramfs(debs: Sequence[Path], root: Path, destination: Path) -> None:
    root.mkdir()
    for deb in debs:
        completed = processes.run(
            ["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True, check=False
        )
        if completed.returncode != 0:
            raise ImageBuildError(f"{deb.name}: cannot unpack: {completed.stderr.strip()}")
    for pruned in _PRUNED:
        shutil.rmtree(root / pruned, ignore_errors=True)
    compile_python(root / "usr/lib" / PYTHON, f"/usr/lib/{PYTHON}")
    with destination.open("wb") as stream:
        archive = CpioWriter(stream)
        for directory in ("dev", "proc", "sys", "root"):
            archive.directory(directory)
        archive.directory("tmp", 0o1777)
        archive.character_device("dev/console", 5, 1)
        archive.tree(root)
        archive.symlink("bin/sh", "busybox")
        archive.symlink("usr/bin/python3", PYTHON)
        archive.file("init", INIT_SCRIPT.encode(), 0o755)
        archive.close()


def compile_python(directory: Path, guest_directory: str) -> None:
    """Write bytecode for the nested host's Python, which is too slow to compile under TCG.

    Hash-based bytecode that is never checked stays valid whatever the file
    times in the archive; done only when our Python has the same bytecode
    version as the nested host's.
    """
    if sys.version_info[:2] != (3, 11):
        return
    compileall.compile_dir(
        directory,
        ddir=guest_directory,
        quiet=2,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


def install(image: Path, images: Path, key: str) -> None:
    """Move the built image into place, point ``current`` at it, drop older ones."""
    final = images / key
    shutil.rmtree(final, ignore_errors=True)
    image.rename(final)
    link = images / ".current"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(key)
    link.replace(images / "current")
    for old in images.iterdir():
        if old.name not in (key, "current") and not old.name.startswith("."):
            shutil.rmtree(old, ignore_errors=True)
