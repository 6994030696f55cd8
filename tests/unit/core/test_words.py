"""Counts and sizes in messages."""

from __future__ import annotations

from qemu_errata.core.words import byte_size, plural


def test_a_count_takes_its_noun_in_the_right_number() -> None:
    assert [plural(n, "host") for n in (0, 1, 2)] == ["0 hosts", "1 host", "2 hosts"]
    assert [plural(n, "erratum", "errata") for n in (1, 2)] == ["1 erratum", "2 errata"]


def test_a_download_size_is_never_zero_megabytes() -> None:
    """Debian's libffi8 is about 20 kB: it showed as "0.0 MB"."""
    assert [byte_size(n) for n in (1, 999, 1000, 20_304, 999_499, 999_500, 65_432_100)] == [
        "1 byte",
        "999 bytes",
        "1 kB",
        "20 kB",
        "999 kB",
        "1.0 MB",
        "65.4 MB",
    ]
