"""Words messages share: a count with its noun in the right number, a size in bytes."""


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 host``, ``2 hosts``: a count with its noun in the right number (``many`` where the
    plural is not the noun and an s: ``plural(n, "erratum", "errata")``)."""
    return f"{count} {noun}" if count == 1 else f"{count} {many or noun + 's'}"


def byte_size(count: int) -> str:
    """A size as people read it: ``512 bytes``, ``67 kB``, ``12.3 MB`` (never ``0.0 MB``)."""
    if count < 1000:
        return plural(count, "byte")
    if count < 999_500:  # rounds to at most 999 kB
        return f"{count / 1e3:.0f} kB"
    return f"{count / 1e6:.1f} MB"
