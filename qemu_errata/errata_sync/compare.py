"""Differences between two table documents, row by row (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qemu_errata.errata_sync.debian import stable_subjects, version_key
from qemu_errata.errata_sync.derive import ERRATA_SUBJECT, Change

_ROW_KEYS = {
    "kernel": "series",
    "workaround": "capability",
    "erratum": "id",
    "undecided": "id",
    "list": "name",
}


def differences(committed: Mapping[str, Any], derived: Mapping[str, Any]) -> list[str]:
    """One line per row that is missing, extra or different (naming the keys that differ)."""
    found = [
        f"[table].{k}: {committed['table'].get(k)!r} != derived {v!r}"
        for k, v in derived["table"].items()
        if committed.get("table", {}).get(k) != v
    ]
    for kind, key in _ROW_KEYS.items():
        ours = {row[key]: row for row in committed.get(kind, [])}
        theirs = {row[key]: row for row in derived.get(kind, [])}
        for name in theirs.keys() - ours.keys():
            found.append(f"[[{kind}]] {name}: missing from the table")
        for name in ours.keys() - theirs.keys():
            found.append(f"[[{kind}]] {name}: in the table, not in the kernels")
        for name in ours.keys() & theirs.keys():
            keys = sorted(
                k
                for k in ours[name].keys() | theirs[name].keys()
                if ours[name].get(k) != theirs[name].get(k)
            )
            if keys:
                found.append(f"[[{kind}]] {name}: {', '.join(keys)} differ")
    return sorted(found)


def unexplained_subjects(
    changelog: str, series: str, oldest: str, newest: str, changes: tuple[Change, ...]
) -> list[str]:
    """Changelog subjects after ``oldest`` that may change an errata fact and that no
    [[change]] row accounts for, and [[change]] rows whose subject the changelog lacks."""
    subjects = stable_subjects(changelog)
    mine = [c for c in changes if c.series == series]
    listed = {(c.release, c.subject) for c in mine}
    found = []
    for release, lines in subjects.items():
        if not release.startswith(series + "."):
            continue
        if not version_key(oldest) < version_key(release) <= version_key(newest):
            continue
        for subject in lines:
            if ERRATA_SUBJECT.search(subject) and (release, subject) not in listed:
                found.append(f"{release}: changelog {subject!r} has no [[change]] row")
    for change in mine:
        if change.subject not in subjects.get(change.release, []):
            found.append(f"{change.release}: [[change]] {change.subject!r} not in the changelog")
    return found
