"""data/errata.toml is what the pinned Debian kernels say: re-derived from their sources.

The pinned linux-source/linux-config packages (data/debian-kernels.toml) are fetched into
the cache on first use (about 485 MB; unpacking the three takes about 2 minutes on this
machine's shared cores), then the derivation takes a few seconds.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any

import pytest

from qemu_errata.errata_sync import debian, render, sources
from qemu_errata.errata_sync.compare import differences
from qemu_errata.errata_sync.main import TABLE, derived_table


@pytest.fixture(scope="module")
def derived() -> tuple[dict[str, Any], list[str]]:
    """The table the pinned packages give (fetched into the cache on first use)."""
    return derived_table(lambda line: None)


def test_the_committed_table_is_what_the_pinned_debian_kernels_say(
    derived: tuple[dict[str, Any], list[str]],
) -> None:
    document, unexplained = derived
    committed = tomllib.loads(resources.files("qemu_errata").joinpath(TABLE).read_text("utf-8"))
    rederived = tomllib.loads(render.toml_text(document))
    assert unexplained == []
    assert differences(committed, rederived) == []


def test_the_derivation_reads_the_facts_the_changelog_names(
    derived: tuple[dict[str, Any], list[str]],
) -> None:
    # 7.2.13's cpu_errata.c compares each listed CPU with its own MIDR (7.2.9's fix); the
    # Cortex-A510 AMU erratum shares ARM64_WORKAROUND_BROKEN_AMU_CONSTCNT from 7.2.10 on.
    document, _ = derived
    (kernel,) = [k for k in document["kernel"] if k["series"] == "7.2"]
    assert kernel["target_list"][-1] == {"rule": "each-listed", "kernels": ["7.2.9-"]}
    (amu,) = [e for e in document["erratum"] if e["id"] == "ARM erratum 2457168"]
    assert amu["workarounds"] == ["ARM64_WORKAROUND_BROKEN_AMU_CONSTCNT"]
    assert amu["older"] == [
        {"kernels": ["6.12-6.12.111", "7.2-7.2.9"], "workarounds": ["ARM64_WORKAROUND_2457168"]}
    ]


def test_every_row_of_silicon_errata_rst_is_an_erratum_or_says_why_no_midr_decides_it(
    derived: tuple[dict[str, Any], list[str]],
) -> None:
    pins = sources.load_pins()
    document, _ = derived
    rows = {r["id"]: r for kind in ("erratum", "undecided") for r in document[kind]}
    for kernel in pins.kernels:
        rst = sources.unpacked(pins, kernel, lambda line: None).files[
            "Documentation/arch/arm64/silicon-errata.rst"
        ]
        missing = [e.id for e in debian.documented_errata(rst) if e.id not in rows]
        assert missing == [], kernel.series
    assert {r["why"].split(":")[0] for r in document["undecided"]} == {
        "no-workaround",
        "not-in-kernel",
        "not-midr",
        "matcher",
    }
