"""The shapes of ``data/errata.toml`` (facts) and ``data/errata-effects.toml`` (our words),
held by the one strict table reader (core/tables.py): an unknown key, a wrong type, a part
number wider than MIDR_EL1's field, a revision range backwards, a second row for one
workaround or erratum is an error of one line naming the file, the row and the key.
"""

from __future__ import annotations

from qemu_errata.core import tables
from qemu_errata.core.data_files import parse_table
from qemu_errata.core.errata.ranges import revision_bits, revision_problem
from qemu_errata.core.midr import midr_fits

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any

_TEXT = tables.Value(str)
_TEXTS = tables.Value(list, items=_TEXT)
_REVISION = tables.Value(str, check=revision_problem)
# How a kernel matches listed CPUs (errata.toml [[kernel]].target_list, read from its source).
RULE_OWN_CPU = "own-cpu"  # no list: the MIDR/REVIDR the CPU reads
RULE_ANY_IN_RANGE = "any-in-range"  # 6.15 to 7.2.8: any listed part in range, then REVIDR
# fixes judged on each listed CPU whatever its part (a fixed part beside another still counts)
RULE_EACH_LISTED = "each-listed"
TARGET_LIST_RULES = (RULE_OWN_CPU, RULE_ANY_IN_RANGE, RULE_EACH_LISTED)
# Who acts on an erratum: a guest kernel ("guest"), KVM although a guest detects it too
# ("hypervisor"), a kernel at EL2 only ("host").
APPLIES = ("guest", "hypervisor", "host")
# What decides a mitigation when no list or ID field does.
OTHERWISE = ("firmware", "vulnerable", "unaffected")
_WHY = ("no-workaround", "not-in-kernel", "not-midr")


def _kernel_specs(value: object) -> str | None:
    """Each spec a series, a point release, "X.Y.Z-" or "X.Y-X.Y.Z" of one series."""
    for spec in value if isinstance(value, list) else []:
        parts = [p for half in str(spec).split("-") if half for p in half.split(".")]
        if not parts or not all(p.isascii() and p.isdigit() for p in parts):
            return f"{spec!r} is not a kernel release, series or range of one series"
    return None


def _why(value: object) -> str | None:
    if value in _WHY or str(value).startswith("matcher:"):
        return None
    return f"{value!r} is not one of {', '.join(_WHY)} or matcher:NAME"


_KERNELS = tables.Value(list, items=_TEXT, check=_kernel_specs)
_FIXED = tables.Row(
    {"revision": _REVISION, "revidr_mask": tables.Value(int, bits=64)},
    required=["revision", "revidr_mask"],
)
RANGE = tables.Row(
    {
        "implementer": tables.Value(int, check=midr_fits("Implementer")),
        "part": tables.Value(int, check=midr_fits("PartNum")),
        "part_mask": tables.Value(int, check=midr_fits("PartNum")),
        "from": _REVISION,
        "to": _REVISION,
        "fixed": tables.Value(dict, row=_FIXED),
        "loop": tables.Value(int, bits=8),  # the kernel's branch loop count is a u8
    },
    required=["implementer", "part"],
    ranges=[("from", "to", revision_bits)],
)
_RANGES = tables.Value(list, row=RANGE)


def _with_older(keys: dict[str, tables.Value], required: list[str], **shape: Any) -> tables.Value:
    """Rows of ``keys`` held in a kernel series, with an ``older`` list of earlier values."""
    older = tables.Row({"kernels": _KERNELS, **keys}, required=["kernels"])
    row = tables.Row(
        {**keys, "kernels": _KERNELS, "older": tables.Value(list, row=older)},
        required=[*required, "kernels"],
        **shape,
    )
    return tables.Value(list, row=row)


FACTS_FILE = tables.Row(
    {
        "table": tables.Value(
            dict,
            row=tables.Row(
                {"format": _TEXT, "derived_from": _TEXTS}, required=["format", "derived_from"]
            ),
        ),
        "kernel": tables.Value(
            list,
            row=tables.Row(
                {
                    "series": _TEXT,
                    "releases": _KERNELS,
                    "builds": _TEXTS,
                    "target_list": tables.Value(
                        list,
                        row=tables.Row(
                            {
                                "rule": tables.Value(str, words=TARGET_LIST_RULES),
                                "kernels": _KERNELS,
                            },
                            required=["rule", "kernels"],
                        ),
                    ),
                    "kaslr_kpti_unless": _TEXT,
                },
                required=["series", "releases", "builds", "target_list", "kaslr_kpti_unless"],
                name="series",
                unique=["series"],
            ),
        ),
        "workaround": _with_older(
            {
                "capability": _TEXT,
                "log": _TEXT,
                "matcher": _TEXT,
                "kconfig": _TEXTS,
                "affects": _RANGES,
                "left_out_by": _TEXTS,
            },
            ["capability", "log", "matcher"],
            name="capability",
            unique=["capability"],
        ),
        "erratum": _with_older(
            {
                "id": _TEXT,
                "vendor": _TEXT,
                "components": _TEXTS,
                "kconfig": _TEXT,
                "workarounds": _TEXTS,
                "list": _TEXT,
                "affects": _RANGES,
                "left_out_by": _TEXTS,
            },
            ["id", "vendor", "kconfig", "workarounds", "affects"],
            name="id",
            unique=["id"],
        ),
        "undecided": _with_older(
            {"id": _TEXT, "kconfig": _TEXT, "why": tables.Value(str, check=_why)},
            ["id", "kconfig", "why"],
            name="id",
            unique=["id"],
        ),
        "list": _with_older({"name": _TEXT, "ranges": _RANGES}, ["name", "ranges"], name="name"),
    },
    required=["table", "kernel"],
)

_FIELD_TEST = tables.Value(
    dict,
    row=tables.Row(
        {"register": _TEXT, "field": _TEXT, "min": tables.Value(int, bits=64)},
        required=["register", "field", "min"],
    ),
)
_WORDS = {
    "applies": tables.Value(str, words=APPLIES),
    "effect": _TEXT,
    "requires": tables.Value(list, items=_FIELD_TEST),
    "matters_only_if": _FIELD_TEST,
}


def _words_of(key: str) -> tables.Value:
    """Rows of our words for what ``key`` names (a capability, a list, a Kconfig symbol)."""
    row = tables.Row(
        {key: _TEXT, **_WORDS}, required=[key, "applies", "effect"], name=key, unique=[key]
    )
    return tables.Value(list, row=row)


WORDS_FILE = tables.Row(
    {
        "table": tables.Value(dict, row=tables.Row({"format": _TEXT}, required=["format"])),
        "workaround": _words_of("capability"),
        "list": _words_of("name"),
        "own_midr": _words_of("kconfig"),
        "mitigation": tables.Value(
            list,
            row=tables.Row(
                {
                    "id": _TEXT,
                    "capability": _TEXT,
                    "log": _TEXT,
                    "older_logs": _TEXTS,
                    "safe": _TEXTS,
                    "affected": _TEXTS,
                    "unaffected_if": _FIELD_TEST,
                    "enabled_if": _FIELD_TEST,
                    "firmware_unaffected_if": _FIELD_TEST,
                    "otherwise": tables.Value(str, words=OTHERWISE),
                    "effect": _TEXT,
                },
                required=["id", "capability", "safe", "affected", "otherwise", "effect"],
                name="id",
                unique=["id", "capability"],
            ),
        ),
    },
    required=["table"],
)


def parse_facts(text: str, origin: str) -> dict[str, Any]:
    """errata.toml's ``text``, held to its shape (CatalogueError naming file, row and key)."""
    return parse_table(text, origin, FACTS_FILE)


def parse_words(text: str, origin: str) -> dict[str, Any]:
    """errata-effects.toml's ``text``, held to its shape."""
    return parse_table(text, origin, WORDS_FILE)
