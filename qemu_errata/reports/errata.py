"""The ``errata`` report (errata/1): what a pool's guests, or a host's CPUs, work around.

JSON and text side by side; the command computes the views (core.errata).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qemu_errata.core.board import QEMU_VIRT, Board
from qemu_errata.core.errata import (
    TARGET_LIST_KERNEL,
    Enabled,
    ErrataTable,
    KernelView,
    MitigationVerdict,
    PoolErrata,
    Suppressed,
)
from qemu_errata.core.errata.hazards import FORCED_OFF, PINNED_MIDR, SAFE_LIST, Hazard
from qemu_errata.core.implementations import TargetImplementation
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.vulnerabilities import VULNERABILITIES_DIRECTORY, other_file_words
from qemu_errata.core.words import plural

UNKNOWN_WORDS = "(the hypervisor's firmware answer decides)"

ERRATA_FORMAT = "qemu-errata/errata/1"


class ModelErrata:
    """A pool model's input: its name, the model, its errata and its hazards: those of every
    guest kernel known, and those of the kernel answered for (which the views mark)."""

    def __init__(
        self,
        name: str,
        model: PoolModel,
        errata: PoolErrata,
        hazards: Sequence[Hazard],
        hazards_here: Sequence[Hazard],
    ) -> None:
        self.name, self.model, self.errata = name, model, errata
        self.hazards, self.hazards_here = tuple(hazards), tuple(hazards_here)


class ProfileErrata:
    """A host profile's input: its name, the profile and each CPU's view at EL2."""

    def __init__(
        self, name: str, profile: HostProfile, views: list[tuple[TargetImplementation, KernelView]]
    ) -> None:
        self.name, self.profile, self.views = name, profile, views


# ---------------------------------------------------------------- text


def errata_text(
    table: ErrataTable,
    default_kernel: bool,
    results: Sequence[ModelErrata | ProfileErrata],
    board: Board,
) -> str:
    """The guest kernel answered for (and whether by default), its board, then each input's
    answer."""
    default = " (the default: the newest known)" if default_kernel else ""
    answers = [_result_text(result, table.kernel, board) for result in results]
    header = [
        f"Guest kernel: Debian Linux {table.kernel}{default}",
        f"Guest board: {board.describe()}",
    ]
    return "\n\n".join(["\n".join(header), *answers])


def _result_text(result: ModelErrata | ProfileErrata, kernel: str, board: Board) -> str:
    if isinstance(result, ProfileErrata):
        return _profile_text(result)
    pool = result.errata
    guest = f"a Linux {kernel} guest"
    lines = [f"Pool model {result.name}: {plural(len(pool.targets), 'target implementation')}"]
    lines.extend(_hazard_lines(result, board))
    lost = _lost_in_list(result.hazards_here)
    if pool.guest is not None:
        lines.append(
            f"What {guest} enables (it matches errata against every target implementation):"
        )
        lines.extend(_view_lines(pool.guest, "  ", lost))
        lines.append("What each host type alone adds to every guest:")
        for target, workarounds in pool.marginal:
            named = [" + ".join(ids) for ids in workarounds]
            lines.append(f"  {_name(target)}: {len(workarounds)}{_listing(named)}")
        older = "A guest older than 6.15 reads only its host's MIDR/REVIDR and enables instead:"
    else:
        older = (
            f"{guest[0].upper()}{guest[1:]} (older than 6.15) reads only its host's MIDR/REVIDR:"
        )
    lines.append(older)
    lines.extend(_older_lines(result))
    return "\n".join(lines)


def _older_lines(result: ModelErrata) -> list[str]:
    """What a guest older than 6.15 enables on each host, and what a pinned MIDR takes."""
    lines = []
    for target, view in result.errata.older_guests:
        enabled = [e.erratum.id for e in view.errata if e.no_effect is None]
        enabled += [v.mitigation.id for v in view.mitigations if v.state == "enabled"]
        hidden = list(_hidden_from(result.hazards_here, target))
        missing = f"; LOST to the pinned MIDR: {', '.join(hidden)}" if hidden else ""
        lines.append(f"  on {_name(target)}: {len(enabled)}{_listing(enabled)}{missing}")
        if result.errata.guest is None:
            lines.extend(_vulnerability_lines(view, "    "))
    return lines


def _hazard_lines(result: ModelErrata, board: Board) -> list[str]:
    """Every hazard, loud, before anything else about the pool. The tools that refuse a pool
    judge it on QEMU's board without a guest command line: one given here is said."""
    if not result.hazards:
        return []
    accepted = {name.casefold() for name in result.model.accepted_lost_mitigations}
    who = (
        "baseline, check, plan and the hook refuse the pool unless the model accepts each by name"
        if board == QEMU_VIRT
        else "with this guest command line; baseline, check, plan and the hook judge guests "
        "without one"
    )
    lines = [
        f"HAZARDS: {plural(len(result.hazards), 'hazard')}: guests skip a mitigation or "
        f"workaround on hosts that need it ({who}):"
    ]
    for hazard in result.hazards:
        note = " (accepted in the model)" if hazard.name.casefold() in accepted else ""
        lines.append(f"  {hazard.describe()}{note}")
    return lines


def _lost_in_list(hazards: Sequence[Hazard]) -> dict[str, Hazard]:
    """The mitigations a target-list guest skips on hosts that need them, by id."""
    return {h.name: h for h in hazards if h.cause in (SAFE_LIST, FORCED_OFF)}


def _hidden_from(hazards: Sequence[Hazard], target: TargetImplementation) -> dict[str, Hazard]:
    """What the pinned MIDR hides from an older guest on ``target``'s hosts, by id."""
    return {h.name: h for h in hazards if h.cause == PINNED_MIDR and target in h.needed_on}


def _view_lines(view: KernelView, indent: str, lost: Mapping[str, Hazard]) -> list[str]:
    effective = [e for e in view.errata if e.no_effect is None]
    idle = [e for e in view.errata if e.no_effect is not None]
    lines = [f"{indent}Errata workarounds ({len(effective)}):"]
    lines.extend(_enabled_line(e, indent + "  ") for e in effective)
    if idle:
        lines.append(f"{indent}Detected and logged, changing nothing here ({len(idle)}):")
        lines.extend(f"{indent}  {e.erratum.id}: {e.no_effect}" for e in idle)
    if view.suppressed:
        lines.append(
            f"{indent}Not enabled because of the model's ID registers ({len(view.suppressed)}):"
        )
        lines.extend(
            f"{indent}  {s.erratum.id} ({_names(s.implementations)}): {s.reason}"
            for s in view.suppressed
        )
    lines.append(f"{indent}Mitigations:")
    lines.extend(
        _mitigation_line(v, indent + "  ", lost.get(v.mitigation.id)) for v in view.mitigations
    )
    return lines + _vulnerability_lines(view, indent)


def _vulnerability_lines(view: KernelView, indent: str) -> list[str]:
    """What the guest prints in each file of the vulnerabilities directory."""
    lines = [f"{indent}What it prints in {VULNERABILITIES_DIRECTORY}:"]
    for name, words in view.vulnerabilities().items():
        lines.append(f"{indent}  {name}: {words or UNKNOWN_WORDS}")
    lines.append(f"{indent}  every other file: {other_file_words()}")
    return lines


def _enabled_line(enabled: Enabled, indent: str) -> str:
    erratum = enabled.erratum
    where = (
        " (only on those hosts: matched against the MIDR the CPU reads)"
        if enabled.own_hosts_only
        else ""
    )
    if enabled.only_some_kernels:
        where += f" ({enabled.only_some_kernels})"
    logs = f' [logs "{erratum.log}"]' if erratum.log else " [not logged]"
    acts = " (KVM acts on it)" if erratum.applies == "hypervisor" else ""
    source = f"from {_names(enabled.implementations)}{where}"
    return f"{indent}{erratum.id}{logs}: {erratum.effect}{acts}; {source}"


def _mitigation_line(verdict: MitigationVerdict, indent: str, lost: Hazard | None) -> str:
    """A mitigation's verdict; one the list takes from hosts that need it is never called
    "not needed": it is LOST there."""
    if lost is not None:
        return f"{indent}{lost.describe()}"
    loop = f", branch loop {verdict.loop}" if verdict.loop else ""
    who = f" ({_names(verdict.implementations)})" if verdict.implementations else ""
    return f"{indent}{verdict.mitigation.id}: {verdict.state}{loop}: {verdict.reason}{who}"


def _profile_text(result: ProfileErrata) -> str:
    lines = [f"Host {result.profile.host} ({result.name}):"]
    for target, view in result.views:
        known = plural(len(view.errata) + len(view.suppressed), "erratum", "errata")
        off = f", {len(view.suppressed)} not enabled" if view.suppressed else ""
        lines.append(f"  {_name(target)}: {known} known for this CPU{off}")
        for enabled in view.errata:
            erratum = enabled.erratum
            note = f" ({enabled.no_effect})" if enabled.no_effect else ""
            lines.append(f"    {erratum.id} [{erratum.applies}]: {erratum.effect}{note}")
        lines.extend(f"    {s.erratum.id}: not enabled, {s.reason}" for s in view.suppressed)
    return "\n".join(lines)


def _name(target: TargetImplementation) -> str:
    revidr = "any" if target.revidr is None else f"{target.revidr:#x}"
    return f"{Midr(target.midr).describe()}, REVIDR {revidr}"


def _names(targets: Sequence[TargetImplementation]) -> str:
    return ", ".join(Midr(t.midr).describe() for t in targets)


def _listing(names: Sequence[str]) -> str:
    return f": {', '.join(names)}" if names else ""


# ---------------------------------------------------------------- JSON


def errata_json(
    table: ErrataTable,
    default_kernel: bool,
    results: list[ModelErrata | ProfileErrata],
    board: Board,
) -> dict[str, Any]:
    inputs = [_input_json(r) for r in results]
    return {
        "format": ERRATA_FORMAT,
        "table": table.linux,
        "guest_kernel": table.kernel,
        "guest_kernel_is_default": default_kernel,
        "guest_board": board_json(board),
        "errata": _union(item for document in inputs for item in document["errata"]),
        "hazards": [h for document in inputs for h in document.get("hazards", [])],
        "inputs": inputs,
    }


def _input_json(result: ModelErrata | ProfileErrata) -> dict[str, Any]:
    if isinstance(result, ProfileErrata):
        per_cpu = [
            {"implementation": _implementation(t), "errata": _view_json(v)} for t, v in result.views
        ]
        return {
            "input": result.name,
            "kind": "host-profile",
            "host": result.profile.host,
            "errata": _union(item for cpu in per_cpu for item in cpu["errata"]),
            "implementations": per_cpu,
        }
    pool = result.errata
    return {
        "input": result.name,
        "kind": "pool-model",
        "target_implementations": [_implementation(t) for t in pool.targets],
        "guest_reads_target_list": pool.guest is not None,
        "hazards": [_hazard_json(h, result.model) for h in result.hazards],
        "errata": []
        if pool.guest is None
        else _view_json(pool.guest, _lost_in_list(result.hazards_here)),
        "expected_log": None if pool.guest is None else _log_json(pool.guest),
        "vulnerabilities": None if pool.guest is None else _vulnerabilities_json(pool.guest),
        "not_enabled": []
        if pool.guest is None
        else [_suppressed_json(s) for s in pool.guest.suppressed],
        "added_by_each": [
            {
                "implementation": _implementation(t),
                "adds": [i for ids in workarounds for i in ids],
                "workarounds": [list(ids) for ids in workarounds],
            }
            for t, workarounds in pool.marginal
        ],
        "older_guests": [
            {
                "implementation": _implementation(t),
                "errata": _view_json(v, _hidden_from(result.hazards_here, t)),
                "expected_log": _log_json(v),
                "vulnerabilities": _vulnerabilities_json(v),
            }
            for t, v in pool.older_guests
        ],
        "minimum_target_list_kernel": f"{TARGET_LIST_KERNEL[0]}.{TARGET_LIST_KERNEL[1]}",
    }


def _log_json(view: KernelView) -> dict[str, list[str]]:
    certain, possible = view.expected_log()
    return {"detected": list(certain), "only_some": list(possible)}


def _hazard_json(hazard: Hazard, model: PoolModel) -> dict[str, Any]:
    accepted = {name.casefold() for name in model.accepted_lost_mitigations}
    return {
        **hazard.to_json(),
        "accepted": hazard.name.casefold() in accepted,
        "message": hazard.describe(),
    }


def _vulnerabilities_json(view: KernelView) -> dict[str, Any]:
    """The words of each file (null: a hypervisor answer the input lacks decides)."""
    return {"files": view.vulnerabilities(), "every_other_file": other_file_words()}


def _view_json(view: KernelView, lost: Mapping[str, Hazard] | None = None) -> list[dict[str, Any]]:
    """Each erratum and mitigation of ``view``; those in ``lost`` (by id) are "lost": skipped
    on hosts that need them, never "not needed"."""
    errata = [_enabled_json(e) for e in view.errata]
    lost = lost or {}
    return errata + [_mitigation_json(v, lost.get(v.mitigation.id)) for v in view.mitigations]


def _enabled_json(enabled: Enabled) -> dict[str, Any]:
    erratum = enabled.erratum
    return {
        "id": erratum.id,
        "kind": "erratum",
        "vendor": erratum.vendor,
        "implementations": [_implementation(t) for t in enabled.implementations],
        "guest": erratum.guest_detects,
        "applies": erratum.applies,
        "log": erratum.log or None,
        "capability": erratum.capability or None,
        "kconfig": erratum.kconfig or None,
        "own_hosts_only": enabled.own_hosts_only,
        "only_some_kernels": enabled.only_some_kernels,
        "no_effect": enabled.no_effect,
        "effect": erratum.effect,
    }


def _mitigation_json(verdict: MitigationVerdict, lost: Hazard | None = None) -> dict[str, Any]:
    mitigation = verdict.mitigation
    return {
        "id": mitigation.id,
        "kind": "mitigation",
        "implementations": [_implementation(t) for t in verdict.implementations],
        "guest": verdict.state == "enabled",
        "logged": verdict.logged,
        # Skipped on hosts that need it (a safe list, an erratum forcing it off, a pin): "lost".
        "state": verdict.state if lost is None else "lost",
        "lost_on": [] if lost is None else [_implementation(t) for t in lost.needed_on],
        "loop": verdict.loop,
        "reason": verdict.reason,
        "log": mitigation.log,
        "capability": mitigation.capability,
        "effect": mitigation.effect,
    }


def _suppressed_json(suppressed: Suppressed) -> dict[str, Any]:
    return {
        "id": suppressed.erratum.id,
        "implementations": [_implementation(t) for t in suppressed.implementations],
        "reason": suppressed.reason,
    }


def _implementation(target: TargetImplementation) -> dict[str, Any]:
    return {**target.to_json(), "name": Midr(target.midr).describe()}


def _union(items: Any) -> list[dict[str, Any]]:
    """One object per id, its implementations merged across inputs."""
    merged: dict[str, dict[str, Any]] = {}
    for item in items:
        known = merged.setdefault(item["id"], {**item, "implementations": []})
        known["guest"] = known["guest"] or item["guest"]
        known["implementations"].extend(
            i for i in item["implementations"] if i not in known["implementations"]
        )
    return list(merged.values())


def board_json(board: Board) -> dict[str, Any]:
    """The guest's board as errata and guest-view print it: QEMU's virt machine, which always
    has a KASLR seed in /chosen here (core/board.py), and the guest's command line."""
    return {"machine": "virt", "kaslr_seed": True, "command_line": board.command_line}
