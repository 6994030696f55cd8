"""The package's TOML tables read through copies in the user's cache (shell) of the tables
once parsed and held to their shape, and without them through the core alone, which
writes nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qemu_errata import table_copies
from qemu_errata.core import data_files
from qemu_errata.core.errata.schema import FACTS_FILE
from qemu_errata.core.vmms import VMM_FILE


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    table_copies.install()
    yield tmp_path / "qemu-errata" / "tables"
    data_files.use_copies(None)


def test_a_checked_table_is_read_back_from_a_json_copy_named_by_its_content(cache: Path) -> None:
    parsed = data_files.package_toml("errata.toml", FACTS_FILE)
    (copy,) = cache.glob("errata-*")  # its shape may read registers.toml too (MIDR widths)
    assert copy.name == _current_copy("errata")
    assert json.loads(copy.read_text()) == parsed
    copy.write_text('{"table": "from the copy"}')  # a copy was checked before it was kept
    assert data_files.package_toml("errata.toml", FACTS_FILE) == {"table": "from the copy"}


def _installation() -> str:
    data = Path(data_files.DATA_DIRECTORY).stat()
    return f"{data.st_dev}-{data.st_ino}"


def _current_copy(base: str) -> str:
    table = Path(data_files.DATA_DIRECTORY, f"{base}.toml").stat()
    return f"{base}-{_installation()}-{table.st_size}-{table.st_mtime_ns}.json"


def test_a_new_copy_removes_the_copies_of_the_tables_older_versions(cache: Path) -> None:
    # Each upgrade or reinstall gives the package's tables a new modification time.
    cache.mkdir(parents=True)
    older = [
        cache / f"errata-{_installation()}-100-1.json",
        cache / "errata-100-1.json",  # as 0.3.0 named copies: no installation
        cache / "errata-200-2.json",
    ]
    others = [
        # Another installation's copy (a venv beside a system package): it keeps its own.
        cache / "errata-1-2-100-1.json",
        cache / "errata-effects-100-1.json",
        cache / "errata-notes.json",
        # Not a name a copy is given (no leading zeros, ASCII digits only): not ours to remove.
        cache / "errata-0100-1.json",
        cache / "errata-\uff11\uff10\uff10-1.json",
    ]
    for path in older + others:
        path.write_text("{}")
    data_files.package_toml("errata.toml", FACTS_FILE)
    left = sorted(p.name for p in cache.glob("errata*"))
    assert left == sorted([_current_copy("errata"), *(p.name for p in others)])


def test_a_table_read_without_its_shape_makes_no_copy(cache: Path) -> None:
    assert data_files.package_toml("registers.toml", None)["format"].startswith("qemu-errata/")
    assert not cache.exists()


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", ""])
def test_a_damaged_copy_is_parsed_anew(cache: Path, damage: str) -> None:
    parsed = data_files.package_toml("vmms.toml", VMM_FILE)
    (copy,) = cache.glob("vmms-*")
    copy.write_text(damage)
    assert data_files.package_toml("vmms.toml", VMM_FILE) == parsed


def test_an_unwritable_cache_only_means_no_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # a file: no directory below
    table_copies.install()
    try:
        assert (
            data_files.package_toml("vmms.toml", VMM_FILE)["format"]
            == "qemu-errata/vmm-capabilities/1"
        )
    finally:
        data_files.use_copies(None)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_without_copies_the_core_parses_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    data_files.use_copies(None)
    assert (
        data_files.package_toml("vmms.toml", VMM_FILE)["format"] == "qemu-errata/vmm-capabilities/1"
    )
    assert list(tmp_path.iterdir()) == []


def _writable_by_others(path: Path) -> None:
    path.chmod(0o666 if path.is_file() else 0o777)


def _owned_by_another_user(path: Path) -> None:
    os.chown(path, 65534, 65534)  # nobody


@pytest.mark.parametrize(
    ("damage", "where"),
    [(_writable_by_others, "copy"), (_writable_by_others, "directory")]
    + ([(_owned_by_another_user, "copy")] if os.geteuid() == 0 else []),
)
def test_a_copy_another_user_could_have_written_is_not_read(
    cache: Path, damage: Callable[[Path], None], where: str
) -> None:
    # The hook (root) reads the tables through these copies: a planted errata table would
    # change its decisions, so a copy counts only if no other user could have written it.
    parsed = data_files.package_toml("vmms.toml", VMM_FILE)
    (copy,) = cache.glob("vmms-*")
    copy.write_text('{"table": "planted"}')
    damage(copy if where == "copy" else cache)
    assert data_files.package_toml("vmms.toml", VMM_FILE) == parsed


def test_copies_made_under_a_group_writable_umask_are_read_back(cache: Path) -> None:
    # Debian's user private groups often come with umask 002: the copies must still be
    # ones no other user could have written, or they are never read.
    previous = os.umask(0o002)
    try:
        data_files.package_toml("vmms.toml", VMM_FILE)
    finally:
        os.umask(previous)
    (copy,) = cache.glob("vmms-*")
    copy.write_text('{"table": "from the copy"}')
    assert data_files.package_toml("vmms.toml", VMM_FILE) == {"table": "from the copy"}
