"""The plan as a picture: an SVG matrix of host types a person reads at a glance (pure).

Rows and columns are the plan types, ordered pool by pool; a cell's colour
says whether the pair can share a pool and at what cost (the number of fields
the pair loses), its text says the same in numbers; each proposed pool is
outlined on the diagonal; a legend explains the colours.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from qemu_errata.core.plan import Plan, PlanType

CELL = 32  # pixels per matrix cell
LABEL_WIDTH = 360  # the type descriptions left of the rows
TOP = 56  # the column ids and the title above the matrix
LEGEND_HEIGHT = 150
POOL_NAMES = 70  # right of the matrix: each pool's name beside its square
FONT = "font-family='DejaVu Sans, Verdana, sans-serif' font-size='13'"

SAME = "#bdbdbd"  # the diagonal: a type with itself
FREE = "#1a9850"  # can share a pool and loses nothing
CHEAP = "#a6d96a"  # loses 1 or 2 fields
COSTLY = "#fee08b"  # loses 3 to 5 fields
DEAR = "#fdae61"  # loses 6 fields or more
APART = "#d73027"  # cannot share a pool
OUTLINE = "#000000"

LEGEND = (
    (FREE, "can share a pool, loses nothing"),
    (CHEAP, "can share, loses 1-2 fields"),
    (COSTLY, "can share, loses 3-5 fields"),
    (DEAR, "can share, loses 6 or more fields"),
    (APART, "cannot share a pool"),
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


def plan_svg(plan: Plan) -> str:
    """The SVG document of ``plan``'s matrix (see the module docstring)."""
    order = picture_order(plan)
    size = len(order) * CELL
    width = LABEL_WIDTH + size + POOL_NAMES
    height = TOP + size + 20 + LEGEND_HEIGHT
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'"
        f" viewBox='0 0 {width} {height}'>",
        f"<rect width='{width}' height='{height}' fill='#ffffff'/>",
        _text(8, 20, f"Host types that can share a pool ({len(plan.pools)} proposed)", "bold"),
    ]
    for n, column in enumerate(order):
        x = LABEL_WIDTH + n * CELL + CELL // 2
        parts.append(_text(x, TOP - 8, column.id, anchor="middle"))
    for row_number, row in enumerate(order):
        y = TOP + row_number * CELL
        parts.append(_text(LABEL_WIDTH - 8, y + CELL // 2 + 5, _short(row), anchor="end"))
        for column_number, column in enumerate(order):
            parts.append(_cell(plan, row, column, LABEL_WIDTH + column_number * CELL, y))
    start = 0
    for pool in plan.pools:
        span = len(pool.types) * CELL
        x, y = LABEL_WIDTH + start * CELL, TOP + start * CELL
        parts.append(
            f"<rect x='{x}' y='{y}' width='{span}' height='{span}' fill='none'"
            f" stroke='{OUTLINE}' stroke-width='3'><title>pool {pool.id}</title></rect>"
        )
        parts.append(_text(LABEL_WIDTH + size + 8, y + span // 2 + 5, f"pool {pool.id}"))
        start += len(pool.types)
    parts.extend(_legend(TOP + size + 20))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _cell(plan: Plan, row: PlanType, column: PlanType, x: int, y: int) -> str:
    if row is column:
        colour, text, title = SAME, "", row.describe()
    else:
        pair = plan.cell(row, column)
        lost = pair.lost_fields if pair.compatible else None
        colour = cell_colour(lost)
        text = "x" if lost is None else str(lost)
        title = f"{row.id} + {column.id}: " + (
            f"lose {lost} fields" if lost is not None else pair.deciding
        )
    rect = (
        f"<rect x='{x}' y='{y}' width='{CELL}' height='{CELL}' fill='{colour}'"
        f" stroke='#ffffff' stroke-width='1'><title>{escape(title)}</title></rect>"
    )
    return rect + (_text(x + CELL // 2, y + CELL // 2 + 5, text, anchor="middle") if text else "")


def _legend(top: int) -> list[str]:
    parts = []
    for n, (colour, words) in enumerate(LEGEND):
        y = top + n * 24
        parts.append(f"<rect x='8' y='{y}' width='18' height='18' fill='{colour}'/>")
        parts.append(_text(34, y + 14, words))
    y = top + len(LEGEND) * 24
    parts.append(
        f"<rect x='8' y='{y}' width='18' height='18' fill='none' stroke='{OUTLINE}'"
        " stroke-width='3'/>"
    )
    parts.append(_text(34, y + 14, "a proposed pool"))
    return parts


def _short(plan_type: PlanType) -> str:
    """The row label: the description, cut to fit."""
    text = plan_type.describe()
    return text if len(text) <= 48 else text[:47] + "…"


def _text(x: int, y: int, text: str, weight: str = "normal", anchor: str = "start") -> str:
    return (
        f"<text x='{x}' y='{y}' {FONT} font-weight='{weight}' text-anchor='{anchor}'>"
        f"{escape(text)}</text>"
    )
