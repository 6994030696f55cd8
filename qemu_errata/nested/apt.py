"""A private apt setup that fetches arm64 Debian packages without touching the system's.

The nested host is made of arm64 .debs, which an x86 machine cannot install.
Instead of ``dpkg --add-architecture arm64`` and extra entries in the system's
sources (which would change what every later ``apt-get update`` fetches), each
:class:`AptRoot` is a directory holding its own sources list, package lists
and download cache, configured for arm64 only; apt-get and apt-cache run with
options pointing there. The mirrors are the ones the system's apt already
uses for Debian 12 (``apt-get indextargets``), with the Debian archive
keyring, so a machine that can install Debian packages can build the image.
"""

from __future__ import annotations

import re
import subprocess
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from qemu_errata import processes
from qemu_errata.errors import ImageBuildError

ARCHITECTURE = "arm64"
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
_APT_TIMEOUT_SECONDS = 600
# A line of "apt-get download --print-uris": 'URI' FILE SIZE SHA256:HASH
_PRINT_URI = re.compile(
    r"^'(?P<uri>[^']+)' (?P<filename>\S+) (?P<size>\d+) SHA256:(?P<sha256>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Repository:
    """One suite of a Debian archive: ``uri`` like ``http://mirror/debian/``."""

    uri: str
    suite: str


@dataclass(frozen=True)
class DebFile:
    """A resolved package: the exact version apt chose and where it comes from."""

    package: str
    version: str
    uri: str
    filename: str
    size: int
    sha256: str


def system_repositories() -> dict[str, str]:
    """The archive URI of each Debian suite configured in the system's apt, by suite."""
    output = _run(
        ["apt-get", "indextargets", "--format", "$(TARGET_OF) $(RELEASE) $(REPO_URI)"],
        "list the system's apt repositories",
    )
    repositories: dict[str, str] = {}
    for line in output.splitlines():
        target_of, suite, uri = line.split(" ", 2)
        if target_of == "deb":
            repositories.setdefault(suite, uri)
    return repositories


def debian_repositories(suites: Sequence[str], archive_of: Mapping[str, str]) -> list[Repository]:
    """Repositories for ``suites``; ``archive_of`` maps each to a suite the system has.

    A suite maps to itself, or to the system suite whose archive carries it
    (sid lives in the same archive as bookworm).
    """
    known = system_repositories()
    repositories = []
    for suite in suites:
        source = archive_of.get(suite, suite)
        if source not in known:
            raise ImageBuildError(
                f"apt sources: the system has no {source!r} suite, needed for {suite!r} packages"
            )
        repositories.append(Repository(known[source], suite))
    return repositories


class AptRoot:
    """apt-get and apt-cache on a private state directory, for arm64 packages only."""

    def __init__(self, directory: Path, repositories: Sequence[Repository]) -> None:
        self.directory = directory
        self.repositories = tuple(repositories)

    def update(self) -> None:
        """Write the sources list and fetch the package lists."""
        for sub in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        (self.directory / "status").touch()
        lines = [
            f"deb [arch={ARCHITECTURE} signed-by={DEBIAN_KEYRING}] {r.uri} {r.suite} main"
            for r in self.repositories
        ]
        (self.directory / "sources.list").write_text("\n".join(lines) + "\n")
        self._apt("apt-get", ["update"], "update the package lists")

    def package_names(self) -> list[str]:
        return self._apt("apt-cache", ["pkgnames"], "list package names").split()

    def resolve(self, packages: Sequence[str]) -> list[DebFile]:
        """The newest available version of each package, as apt would download it."""
        output = self._apt(
            "apt-get", ["download", "--print-uris", *packages], f"resolve {' '.join(packages)}"
        )
        files = [parse_download_line(line) for line in output.splitlines() if line.startswith("'")]
        found = {f.package for f in files}
        missing = [p for p in packages if p not in found]
        if missing:
            raise ImageBuildError(f"apt: no {ARCHITECTURE} package named {', '.join(missing)}")
        return files

    def resolve_with_dependencies(self, packages: Sequence[str]) -> list[DebFile]:
        """``packages`` (``name=version`` pins them) and everything they depend on, as apt
        would install them on an empty system (no recommends)."""
        output = self._apt(
            "apt-get",
            # It installs nothing: the system's dpkg lock is not its to take.
            [
                *("install", "--print-uris", "--yes", "--no-install-recommends"),
                *("-o", "Debug::NoLocking=1", *packages),
            ],
            f"resolve the dependencies of {' '.join(packages)}",
        )
        # Those lines carry MD5 sums only: ask again for exactly these versions, with SHA256.
        pinned = [pinned_spec(line) for line in output.splitlines() if line.startswith("'")]
        output = self._apt("apt-get", ["download", "--print-uris", *pinned], "resolve versions")
        return [parse_download_line(line) for line in output.splitlines() if line.startswith("'")]

    def download(self, files: Sequence[DebFile], destination: Path) -> list[Path]:
        """Download exactly these versions into ``destination`` (apt checks the hashes)."""
        specs = [f"{f.package}={f.version}" for f in files]
        self._apt("apt-get", ["download", *specs], "download packages", cwd=destination)
        return [destination / f.filename for f in files]

    def _apt(
        self, program: str, arguments: Sequence[str], what: str, cwd: Path | None = None
    ) -> str:
        d = self.directory
        options = {
            "Dir::Etc::SourceList": d / "sources.list",
            "Dir::Etc::SourceParts": d / "sources.list.d",
            "Dir::Etc::Preferences": d / "preferences",
            "Dir::Etc::PreferencesParts": d / "preferences.d",
            "Dir::State::Lists": d / "lists",
            "Dir::State::status": d / "status",
            "Dir::Cache": d / "cache",
            "APT::Architecture": ARCHITECTURE,
            "APT::Architectures": ARCHITECTURE,
            # Downloads go to directories apt's unprivileged user may not reach.
            "APT::Sandbox::User": "root",
        }
        command = [program, "-q"]
        for key, value in options.items():
            command += ["-o", f"{key}={value}"]
        return _run([*command, *arguments], what, cwd)


def pinned_spec(line: str) -> str:
    """``NAME=VERSION`` of a line of "apt-get install --print-uris": 'URI' FILE SIZE HASH."""
    fields = line.split()
    if len(fields) != 4 or fields[1].count("_") != 2:
        raise ImageBuildError(f"apt: unexpected install line: {line.strip()}")
    package, version, _ = urllib.parse.unquote(fields[1]).split("_")
    return f"{package}={version}"


def parse_download_line(line: str) -> DebFile:
    match = _PRINT_URI.match(line.strip())
    if not match:
        raise ImageBuildError(f"apt: unexpected download line: {line.strip()}")
    filename = match["filename"]
    package, version, _ = urllib.parse.unquote(filename).split("_")
    return DebFile(
        package=package,
        version=version,
        uri=match["uri"],
        filename=filename,
        size=int(match["size"]),
        sha256=match["sha256"],
    )


def _run(command: Sequence[str], what: str, cwd: Path | None = None) -> str:
    try:
        completed = processes.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_APT_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        raise ImageBuildError(f"{command[0]}: not installed (Debian's apt is needed)") from None
    except subprocess.TimeoutExpired:
        raise ImageBuildError(f"apt: {what}: no answer in {_APT_TIMEOUT_SECONDS} s") from None
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        errors = [line for line in lines if line.startswith("E:")] or lines
        detail = errors[-1] if errors else f"exit status {completed.returncode}"
        raise ImageBuildError(f"apt: cannot {what}: {detail}")
    output: str = completed.stdout
    return output
