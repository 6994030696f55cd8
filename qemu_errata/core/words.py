"""Words messages share: a count with its noun in the right number."""


def plural(count: int, noun: str) -> str:
    """``1 host``, ``2 hosts``: a count with its noun in the right number."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
