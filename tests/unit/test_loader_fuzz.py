"""A short run of the loader fuzz campaign (scripts/fuzz loaders runs 100,000 cases)."""

from __future__ import annotations

from pathlib import Path

from support.loader_fuzz import Tally, fuzz, one_parser


def test_no_malformed_document_crashes_or_slips_through(tmp_path: Path) -> None:
    tally = Tally()
    with one_parser():
        fuzz(300, tally, tmp_path)()
    assert tally.cases >= 300
    assert not tally.failures, tally.report()
    assert tally.statuses[2] > 0, tally.report()
    assert tally.statuses[0] + tally.statuses[1] > 0, tally.report()
