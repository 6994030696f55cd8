"""A short run of the hook fuzz harness (hook_fuzz.py; `scripts/fuzz hook` runs the long one)."""

from __future__ import annotations

from pathlib import Path

from hook_fuzz import MUTATIONS, effective_mutations, fuzz


def test_the_hook_never_fails_open_crashes_writes_stdout_or_discloses(tmp_path: Path) -> None:
    counts = fuzz(300, tmp_path)
    assert counts.cases == 300
    assert (counts.fail_open, counts.tracebacks, counts.stdout, counts.disclosure) == (
        0,
        0,
        0,
        0,
    ), counts.summary()
    assert counts.pool_refused_wrongly == 0, counts.summary()
    assert counts.outcomes["refuse->refuse"] > 0
    assert counts.outcomes["allow->allow"] > 0


def test_every_mutation_changes_a_pool_document() -> None:
    assert effective_mutations() == MUTATIONS
