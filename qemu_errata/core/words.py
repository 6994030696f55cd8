"""Words messages share: a count with its noun in the right number."""


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 host``, ``2 hosts``: a count with its noun in the right number (``many`` where the
    plural is not the noun and an s: ``plural(n, "erratum", "errata")``)."""
    return f"{count} {noun}" if count == 1 else f"{count} {many or noun + 's'}"
