"""The table document as TOML text, in one fixed layout (pure): what --write writes and
--check compares, so a difference is a difference of facts, never of spelling."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

HEADER = """\
# qemu-errata's errata facts, derived by scripts/errata-sync from Debian's linux-source and
# linux-config packages (pinned in debian-kernels.toml): do not edit, run
# `scripts/errata-sync --write`. Facts (names, numbers, ranges) only; what each workaround
# does, in our words, is errata-effects.toml.
#
# [[kernel]]      a series we answer for: its point releases, Debian's builds (flavours), how
#                 its guests match a target implementation list (target_list: rule by kernels),
#                 the ID field that keeps KPTI off under KASLR (kaslr_kpti_unless)
# [[workaround]]  one kernel capability: the line it logs after "CPU features: detected: ",
#                 the function that matches it, the Kconfig symbols that build it in,
#                 ranges no documented erratum claims (affects)
# [[erratum]]     one row of silicon-errata.rst decided by MIDR: its Kconfig symbol, the
#                 workarounds (capabilities) carrying it, or else the list deciding it
#                 (broken-dbm: cpufeature.c's; own-midr: code comparing the MIDR the CPU
#                 reads with cputype.h's MIDR_<X>_ERRATUM_<N> under its mask), and the
#                 ranges (implementer, part, from/to "rVpR" inclusive or all versions,
#                 part_mask, fixed = that revision with any REVIDR bit of revidr_mask)
# [[undecided]]   a row of silicon-errata.rst no MIDR decides, and why: no-workaround (no
#                 Kconfig symbol), not-in-kernel (no such Kconfig symbol in that kernel),
#                 not-midr (its symbol guards nothing matched by MIDR: a driver, the
#                 interrupt controller, the SMMU, the timer), matcher:NAME (decided by that
#                 function from something else: a command line option)
# [[list]]        the MIDR lists of the Spectre/Meltdown decisions, KPTI and broken DBM;
#                 spectre-bhb-loop ranges carry the loop count
# Every row: kernels = where it holds ("7.2" every release we answer for, "7.2.10-" from,
# "7.2-7.2.9" up to); left_out_by = Debian builds whose config leaves it out; older = the
# values of older kernels where they differ.
"""


def toml_text(document: Mapping[str, Any]) -> str:
    lines = [HEADER]
    lines.append("[table]")
    lines += [f"{k} = {_value(v)}" for k, v in document["table"].items()]
    for kind in ("kernel", "workaround", "erratum", "undecided", "list"):
        for row in document.get(kind, []):
            lines.append("")
            lines.append(f"[[{kind}]]")
            for key, value in row.items():
                lines.append(
                    f"{key} = {_value(value, multiline=key in ('affects', 'ranges', 'older'))}"
                )
    return "\n".join(lines) + "\n"


HEX_KEYS = frozenset({"implementer", "part", "part_mask", "revidr_mask"})


def _value(value: Any, multiline: bool = False, key: str = "") -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:#x}" if key in HEX_KEYS else str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v, key=k)}" for k, v in value.items()) + " }"
    if isinstance(value, Sequence):
        if multiline and value:
            return "[\n" + "".join(f"  {_value(v)},\n" for v in value) + "]"
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)
