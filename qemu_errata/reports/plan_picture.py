"""The plan as a picture: an SVG matrix of host types a person reads at a glance (pure).

Rows and columns are the plan types, ordered pool by pool; a cell's colour says
whether the pair can share a pool and at what cost, its text says the same: the
number of fields the pair loses, or letters naming, below the matrix, the reasons
the pair cannot share a pool (the commonest reasons first). Each proposed pool is
outlined on the diagonal. Every row has its whole description (in a monospaced
font, so that the picture is made wide enough for it), and the legend has an entry
for every mark.
"""

from __future__ import annotations

import string
import textwrap
from collections import Counter
from collections.abc import Iterable
from xml.sax.saxutils import escape

from qemu_errata.core.plan import Cell, Plan, PlanType

CELL = 32  # pixels per matrix cell
TOP = 56  # the column ids and the title above the matrix
MARGIN = 8
LINE = 24  # pixels per legend or reason line
CHAR = 8  # pixels per character of the monospaced font (DejaVu Sans Mono 13 px: 7.8)
CELL_MARKS = 2  # reasons a cell names by mark (a "+" says there are more)
REASON_WIDTH = 120  # characters per line of a reason under the matrix
POOL_NAMES = 130  # right of the matrix: each pool's name beside its square
FONT = "font-family='DejaVu Sans Mono, monospace' font-size='13'"  # on the group of all

SAME = "#bdbdbd"  # the diagonal: a type with itself
FREE = "#1a9850"  # can share a pool and loses nothing
CHEAP = "#a6d96a"  # loses 1 or 2 fields
COSTLY = "#fee08b"  # loses 3 to 5 fields
DEAR = "#fdae61"  # loses 6 fields or more
APART = "#d73027"  # cannot share a pool
OUTLINE = "#000000"

LEGEND = (
    (SAME, "a type with itself"),
    (FREE, "can share a pool, loses nothing (0)"),
    (CHEAP, "can share, loses 1-2 fields (the number in the cell)"),
    (COSTLY, "can share, loses 3-5 fields"),
    (DEAR, "can share, loses 6 or more fields"),
    (APART, "cannot share a pool: each letter names a reason, below (+: more)"),
)


def cell_colour(lost_fields: int | None) -> str:
    """The colour of a pair that loses ``lost_fields`` (None: cannot share a pool)."""
    if lost_fields is None:
        return APART
    if lost_fields == 0:
        return FREE
    if lost_fields <= 2:
        return CHEAP
    return COSTLY if lost_fields <= 5 else DEAR


def picture_order(plan: Plan) -> list[PlanType]:
    """The types pool by pool, so that each pool is a square on the diagonal."""
    return [t for pool in plan.pools for t in pool.types]


def _reason_mark(number: int) -> str:
    """``a`` ... ``z``, ``A`` ... ``Z``, then ``#53`` ...: the mark of the ``number``-th
    reason (from 0; the commonest reasons get the letters)."""
    letters = string.ascii_lowercase + string.ascii_uppercase
    return letters[number] if number < len(letters) else f"#{number + 1}"


def _matrix_left(plan: Plan) -> int:
    """Where the matrix starts: right of the longest row label."""
    return MARGIN * 2 + CHAR * max(len(t.describe()) for t in plan.types)


def plan_svg(plan: Plan) -> str:
    """The SVG document of ``plan``'s matrix (see the module docstring)."""
    order = picture_order(plan)
    left = _matrix_left(plan)
    size = len(order) * CELL
    pairs = {
        (row.id, column.id): plan.cell(row, column)
        for row in order
        for column in order
        if row is not column
    }
    marks = _marks(pairs.values())
    cells = []
    for row_number, row in enumerate(order):
        y = TOP + row_number * CELL
        cells.append(_text(left - MARGIN, y + CELL // 2 + 5, row.describe(), anchor="end"))
        for column_number, column in enumerate(order):
            at = (left + column_number * CELL, y)
            pair = pairs.get((row.id, column.id))
            cells.append(_cell(row, column, pair, at, marks))
    bottom = TOP + size + 20
    why = [  # (indent in characters, text): each reason wrapped, under its mark
        (0 if n == 0 else len(mark) + 2, line.strip())
        for words, mark in marks.items()
        for n, line in enumerate(textwrap.wrap(f"{mark}: {words}", REASON_WIDTH))
    ]
    texts = [words for _, words in LEGEND] + [line for _, line in why]
    width = max(left + size + POOL_NAMES, 34 + CHAR * max(len(t) for t in texts) + MARGIN)
    reasons_top = bottom + LINE * (len(LEGEND) + 1)
    height = reasons_top + LINE * len(why) * 3 // 4 + MARGIN
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'"
        f" viewBox='0 0 {width} {height}'>",
        f"<rect width='{width}' height='{height}' fill='#ffffff'/>",
        f"<g {FONT}>",
        _text(MARGIN, 20, f"Host types that can share a pool ({len(plan.pools)} proposed)", "bold"),
        *(
            _text(left + n * CELL + CELL // 2, TOP - 8, column.id, anchor="middle")
            for n, column in enumerate(order)
        ),
        *cells,
        *_pool_outlines(plan, left, size),
        *_legend(bottom),
        *(
            _text(MARGIN + CHAR * indent, reasons_top + LINE * n * 3 // 4 + 14, line)
            for n, (indent, line) in enumerate(why)
        ),
        "</g>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def _marks(cells: Iterable[Cell]) -> dict[str, str]:
    """Each reason some pair cannot share for (a clause of its words), commonest first, and
    its mark."""
    counts = Counter(clause for cell in cells if not cell.compatible for clause in _clauses(cell))
    return {clause: _reason_mark(n) for n, (clause, _) in enumerate(counts.most_common())}


def _clauses(cell: Cell) -> list[str]:
    return cell.brief.split("; ")


def _pool_outlines(plan: Plan, left: int, size: int) -> list[str]:
    parts = []
    start = 0
    for pool in plan.pools:
        span = len(pool.types) * CELL
        x, y = left + start * CELL, TOP + start * CELL
        parts.append(
            f"<rect x='{x}' y='{y}' width='{span}' height='{span}' fill='none'"
            f" stroke='{OUTLINE}' stroke-width='3'><title>pool {pool.id}</title></rect>"
        )
        parts.append(_text(left + size + MARGIN, y + span // 2 + 5, f"pool {pool.id}"))
        start += len(pool.types)
    return parts


def _cell(
    row: PlanType,
    column: PlanType,
    pair: Cell | None,
    at: tuple[int, int],
    marks: dict[str, str],
) -> str:
    """One cell at ``at`` (x, y): None for a type with itself."""
    x, y = at
    if pair is None:
        colour, text, title = SAME, "", row.describe()
    elif pair.compatible:
        colour, text = cell_colour(pair.lost_fields), str(pair.lost_fields)
        title = f"{row.id} + {column.id}: lose {pair.lost_fields} fields"
    else:
        every = [marks[clause] for clause in _clauses(pair)]
        colour = APART
        text = "".join(every[:CELL_MARKS]) + ("+" if len(every) > CELL_MARKS else "")
        title = f"{row.id} + {column.id}: cannot share a pool ({', '.join(every)}: below)"
    rect = (
        f"<rect x='{x}' y='{y}' width='{CELL}' height='{CELL}' fill='{colour}'"
        f" stroke='#ffffff'><title>{escape(title)}</title></rect>"
    )
    return rect + (_text(x + CELL // 2, y + CELL // 2 + 5, text, anchor="middle") if text else "")


def _legend(top: int) -> list[str]:
    parts = []
    for n, (colour, words) in enumerate(LEGEND):
        y = top + n * LINE
        parts.append(f"<rect x='{MARGIN}' y='{y}' width='18' height='18' fill='{colour}'/>")
        parts.append(_text(34, y + 14, words))
    y = top + len(LEGEND) * LINE
    parts.append(
        f"<rect x='{MARGIN}' y='{y}' width='18' height='18' fill='none' stroke='{OUTLINE}'"
        " stroke-width='3'/>"
    )
    parts.append(_text(34, y + 14, "a proposed pool (its id on the right)"))
    return parts


def _text(x: int, y: int, text: str, weight: str = "normal", anchor: str = "start") -> str:
    """A text in the group's font; weight and anchor only where not the default."""
    bold = "" if weight == "normal" else f" font-weight='{weight}'"
    aligned = "" if anchor == "start" else f" text-anchor='{anchor}'"
    return f"<text x='{x}' y='{y}'{bold}{aligned}>{escape(text)}</text>"
