"""scripts/errata-sync: derive the errata table from the pinned Debian kernels, and write
it (--write) or compare it with the committed one (--check, the default)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from qemu_errata.core.errata.schema import parse_facts
from qemu_errata.core.words import plural
from qemu_errata.errata_sync import debian, derive, render, sources
from qemu_errata.errata_sync.compare import differences, unexplained_subjects
from qemu_errata.errata_sync.kernel_facts import kernel_facts
from qemu_errata.errors import CatalogueError

TABLE = "data/errata.toml"


def derived_table(progress: sources.Progress) -> tuple[dict[str, Any], list[str]]:
    """The table the pinned kernels give, and the changelog subjects nothing explains."""
    pins = sources.load_pins()
    inputs, unexplained = [], []
    for kernel in pins.kernels:
        files = sources.unpacked(pins, kernel, progress)
        facts = kernel_facts(files.files)
        pinned = debian.upstream_release(kernel.version)
        if facts.release != pinned:
            raise sources.SourcesError(
                f"{kernel.series}: source is {facts.release}, pinned {pinned}"
            )
        shipped = debian.shipped_releases(files.changelog, kernel.series)
        releases = tuple(
            r for r in shipped if debian.version_key(kernel.oldest) <= debian.version_key(r)
        )
        unexplained += unexplained_subjects(
            files.changelog, kernel.series, kernel.oldest, pinned, pins.changes
        )
        inputs.append(
            derive.SeriesInput(
                series=kernel.series,
                package=f"linux-source-{kernel.series} {kernel.version}",
                facts=facts,
                builds={f: debian.enabled_symbols(t) for f, t in files.configs.items()},
                symbols=frozenset().union(
                    *(debian.mentioned_symbols(t) for t in files.configs.values())
                ),
                releases=releases,
                documented=debian.documented_errata(
                    files.files["Documentation/arch/arm64/silicon-errata.rst"]
                ),
                changes=tuple(c for c in pins.changes if c.series == kernel.series),
            )
        )
    return derive.table(inputs), unexplained


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="errata-sync", description=__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="compare (the default)")
    action.add_argument("--write", action="store_true", help="write data/errata.toml")
    arguments = parser.parse_args(argv)
    started = time.monotonic()

    def progress(line: str) -> None:
        print(f"errata-sync: {line}", file=sys.stderr, flush=True)

    try:
        document, unexplained = derived_table(progress)
    except sources.SourcesError as error:
        print(f"errata-sync: {error}", file=sys.stderr)
        return 3
    text = render.toml_text(document)
    table = Path(str(resources.files("qemu_errata").joinpath(TABLE)))
    if arguments.write:
        table.write_text(text, "utf-8")
        print(f"wrote {table}")
    try:
        committed = parse_facts(table.read_text("utf-8"), TABLE)
        found = unexplained + differences(committed, parse_facts(text, f"derived {TABLE}"))
    except CatalogueError as error:
        print(f"errata-sync: {error}", file=sys.stderr)
        return 2
    for line in found:
        print(line)
    kernels = ", ".join(document["table"]["derived_from"])
    seconds = time.monotonic() - started
    print(f"{plural(len(found), 'difference')} between {TABLE} and {kernels} ({seconds:.1f} s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
