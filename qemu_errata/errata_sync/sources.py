"""The pinned Debian packages: download (checked against the pinned sha256), unpack the few
files the facts come from, and cache both outside the repository.

The cache (``$QEMU_ERRATA_SOURCES_CACHE``, default /var/cache/qemu-errata/errata-sources)
holds ``debs/`` (the packages as downloaded) and ``<series>/<version>/`` (the unpacked
files). Kernel sources are GPL: they stay in the cache, never in the repository.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import lzma
import os
import shutil
import tarfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from qemu_errata.core import tables
from qemu_errata.core.data_files import parse_table, read_package_text
from qemu_errata.core.errata.schema import TARGET_LIST_RULES
from qemu_errata.errata_sync.derive import Change
from qemu_errata.errata_sync.kernel_facts import SOURCE_FILES
from qemu_errata.errors import QemuErrataError

CACHE_ENVIRONMENT = "QEMU_ERRATA_SOURCES_CACHE"
DEFAULT_CACHE = Path("/var/cache/qemu-errata/errata-sources")
PINS_FORMAT = "qemu-errata/debian-kernels/1"
_CHUNK = 1 << 20
_DOWNLOAD_TIMEOUT_SECONDS = 120

Progress = Callable[[str], None]


class SourcesError(QemuErrataError):
    """A pinned package could not be fetched or unpacked."""


@dataclass(frozen=True)
class PinnedFile:
    path: str  # below the archive
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PinnedKernel:
    series: str
    suite: str
    version: str
    oldest: str
    source: PinnedFile
    config: PinnedFile


@dataclass(frozen=True)
class Pins:
    archive: str
    kernels: tuple[PinnedKernel, ...]
    changes: tuple[Change, ...]


_TEXT, _TEXTS = tables.Value(str), tables.Value(list, items=tables.Value(str))
_RELEASE = tables.Value(str, check=tables.numbers(3))
_BY_KCONFIG = tables.Value(dict, items=_TEXT)


def _sha256(value: object) -> str | None:
    text = str(value)
    hexadecimal = all(c in "0123456789abcdef" for c in text)
    return None if len(text) == 64 and hexadecimal else f"{value!r} is not a sha256 in hex"


_FILE = tables.Value(
    dict,
    row=tables.Row(
        {
            "path": _TEXT,
            "size": tables.Value(int, bits=64),
            "sha256": tables.Value(str, check=_sha256),
        },
        required=["path", "size", "sha256"],
    ),
)
PINS_FILE = tables.Row(
    {
        "table": tables.Value(
            dict,
            row=tables.Row(
                {"format": tables.Value(str, words=[PINS_FORMAT]), "archive": _TEXT},
                required=["format", "archive"],
            ),
        ),
        "kernel": tables.Value(
            list,
            row=tables.Row(
                {
                    "series": tables.Value(str, check=tables.numbers(2)),
                    "suite": _TEXT,
                    "version": _TEXT,
                    "oldest": _RELEASE,
                    "source": _FILE,
                    "config": _FILE,
                },
                required=["series", "suite", "version", "oldest", "source", "config"],
                name="series",
                unique=["series"],
            ),
        ),
        "change": tables.Value(
            list,
            row=tables.Row(
                {
                    "series": tables.Value(str, check=tables.numbers(2)),
                    "release": _RELEASE,
                    "subject": _TEXT,
                    "errata_added": _TEXTS,
                    "capability_before": _BY_KCONFIG,
                    "log_before": _BY_KCONFIG,
                    "target_list_rule_before": tables.Value(str, words=TARGET_LIST_RULES),
                    "no_fact_change": _TEXT,
                },
                required=["series", "release", "subject"],
                name="release",
            ),
        ),
    },
    required=["table", "kernel"],
)


def load_pins() -> Pins:
    """data/debian-kernels.toml."""
    return parse_pins(read_package_text("debian-kernels.toml"), "debian-kernels.toml")


def parse_pins(text: str, origin: str) -> Pins:
    """The pins in ``text``; CatalogueError names the file, the row and the key."""
    document = parse_table(text, origin, PINS_FILE)
    kernels = tuple(
        PinnedKernel(
            series=k["series"],
            suite=k["suite"],
            version=k["version"],
            oldest=k["oldest"],
            source=PinnedFile(**k["source"]),
            config=PinnedFile(**k["config"]),
        )
        for k in document["kernel"]
    )
    changes = tuple(_change(c) for c in document.get("change", []))
    return Pins(document["table"]["archive"], kernels, changes)


def _change(row: dict[str, Any]) -> Change:
    return Change(
        series=row["series"],
        release=row["release"],
        subject=row["subject"],
        errata_added=tuple(row.get("errata_added", ())),
        capability_before=row.get("capability_before"),
        log_before=row.get("log_before"),
        target_list_rule_before=row.get("target_list_rule_before", ""),
        no_fact_change=row.get("no_fact_change", ""),
    )


def cache_directory() -> Path:
    return Path(os.environ.get(CACHE_ENVIRONMENT) or DEFAULT_CACHE)


@dataclass(frozen=True)
class Unpacked:
    """The files of one pinned kernel: source files by path, configs by flavour, changelog."""

    files: dict[str, str]
    configs: dict[str, str]
    changelog: str


def unpacked(pins: Pins, kernel: PinnedKernel, progress: Progress) -> Unpacked:
    """The kernel's files, from the cache or fetched and unpacked now."""
    directory = cache_directory() / kernel.series / kernel.version
    done = directory / ".complete"
    if not done.exists():
        source = fetch(pins.archive, kernel.source, progress)
        config = fetch(pins.archive, kernel.config, progress)
        partial = directory.with_name(directory.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        progress(f"unpacking {kernel.source.filename} ({len(SOURCE_FILES)} files)")
        _unpack_source(source, kernel.series, partial / "tree")
        _unpack_configs(config, partial / "config")
        shutil.rmtree(directory, ignore_errors=True)
        partial.rename(directory)
        done.touch()
    return Unpacked(
        files={p: (directory / "tree" / p).read_text("utf-8", "replace") for p in SOURCE_FILES},
        configs={p.name: p.read_text("utf-8") for p in sorted((directory / "config").glob("*"))},
        changelog=(directory / "tree" / "changelog.Debian").read_text("utf-8", "replace"),
    )


def fetch(archive: str, pinned: PinnedFile, progress: Progress) -> Path:
    """The package file, downloaded once into the cache and checked against its pin."""
    debs = cache_directory() / "debs"
    target = debs / pinned.filename
    if target.exists() and target.stat().st_size == pinned.size:
        return target
    debs.mkdir(parents=True, exist_ok=True)
    url = archive.rstrip("/") + "/" + pinned.path.replace("~", "%7e").replace("+", "%2b")
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        with (
            urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_SECONDS) as answer,
            partial.open("wb") as out,
        ):
            _copy(answer, out, digest, pinned, progress)
    except OSError as error:
        raise SourcesError(f"{url}: cannot download: {error}") from None
    if digest.hexdigest() != pinned.sha256:
        partial.unlink()
        raise SourcesError(f"{url}: sha256 {digest.hexdigest()} is not the pinned {pinned.sha256}")
    partial.rename(target)
    return target


def _copy(
    answer: IO[bytes], out: IO[bytes], digest: Any, pinned: PinnedFile, progress: Progress
) -> None:
    copied, shown = 0, -1
    while chunk := answer.read(_CHUNK):
        out.write(chunk)
        digest.update(chunk)
        copied += len(chunk)
        percent = copied * 100 // max(pinned.size, 1)
        if percent // 10 != shown:
            shown = percent // 10
            done, size = copied / 2**20, pinned.size / 2**20
            progress(f"downloading {pinned.filename}: {done:.1f} of {size:.1f} MiB")


def _deb_data(deb: Path) -> tarfile.TarFile:
    """The data.tar.* member of a .deb (an ar archive), opened as a stream."""
    handle = deb.open("rb")
    if handle.read(8) != b"!<arch>\n":
        raise SourcesError(f"{deb}: not a Debian package")
    while header := handle.read(60):
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        if name.startswith("data.tar"):
            data = io.BufferedReader(_Limited(handle, size))
            return tarfile.open(fileobj=data, mode="r|*")
        handle.seek(size + size % 2, os.SEEK_CUR)
    raise SourcesError(f"{deb}: no data.tar member")


class _Limited(io.RawIOBase):
    """The next ``size`` bytes of a file, as a stream."""

    def __init__(self, handle: IO[bytes], size: int) -> None:
        self.handle, self.left = handle, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.left)
        data = self.handle.read(wanted)
        buffer[: len(data)] = data
        self.left -= len(data)
        return len(data)


def _members(archive: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    for member in archive:
        stream = archive.extractfile(member) if member.isfile() else None
        if stream is not None:
            yield member, stream


def _unpack_source(deb: Path, series: str, tree: Path) -> None:
    """The SOURCE_FILES of the nested linux-source-X.Y.tar.xz, and the Debian changelog."""
    wanted = {f"linux-source-{series}/{p}": p for p in SOURCE_FILES}
    tree.mkdir(parents=True)
    with _deb_data(deb) as data:
        for member, stream in _members(data):
            if member.name.endswith("changelog.Debian.gz"):
                (tree / "changelog.Debian").write_bytes(gzip.decompress(stream.read()))
            elif member.name.endswith(f"linux-source-{series}.tar.xz"):
                with tarfile.open(fileobj=stream, mode="r|xz") as inner:
                    for file, content in _members(inner):
                        if file.name in wanted:
                            path = tree / wanted[file.name]
                            path.parent.mkdir(parents=True, exist_ok=True)
                            path.write_bytes(content.read())
    missing = [p for p in SOURCE_FILES if not (tree / p).exists()]
    if missing or not (tree / "changelog.Debian").exists():
        raise SourcesError(f"{deb}: lacks {', '.join(missing) or 'changelog.Debian.gz'}")


def _unpack_configs(deb: Path, directory: Path) -> None:
    """config.arm64_none_<flavour>.xz files, as <flavour>."""
    directory.mkdir(parents=True)
    with _deb_data(deb) as data:
        for member, stream in _members(data):
            name = member.name.rsplit("/", 1)[-1]
            if name.startswith("config.arm64_none_") and name.endswith(".xz"):
                flavour = name.removeprefix("config.arm64_none_").removesuffix(".xz")
                (directory / flavour).write_bytes(lzma.decompress(stream.read()))
