"""The ``baseline`` and ``check`` commands: pool models from host profiles."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.commands.arguments import (
    InputFile,
    accepted_names,
    add_accept_option,
    add_vmm_option,
    read_profile_argument,
)
from qemu_errata.core.catalogue import load_catalogue
from qemu_errata.core.errata import added_by, load_errata_table
from qemu_errata.core.errata.hazards import FORCED_OFF, SAFE_LIST, accepting, hosts_of
from qemu_errata.core.hosttypes import HostType, group_hosts
from qemu_errata.core.pool import (
    MAX_HOSTS_FOR_SUBSETS,
    Blocker,
    PoolModel,
    Reason,
    baseline,
    largest_pools,
    pin_midr,
)
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.core.vmm_fit import baseline_with, check_with, pool_refusals
from qemu_errata.core.vmms import Vmm
from qemu_errata.core.words import plural
from qemu_errata.errors import ExitStatus, IncompatiblePoolError, InputError
from qemu_errata.files import read_model, write_json
from qemu_errata.reports.baseline import baseline_json, describe_model, refusal_json, refusal_lines
from qemu_errata.reports.check import check_json, describe_check
from qemu_errata.reports.errata_cost import Cost
from qemu_errata.vmm.discovery import deciding_vmm

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from typing import Any


def register(commands: Subcommands) -> None:
    """Add ``baseline`` and ``check``."""
    sub = add_command(commands, "baseline")
    sub.add_argument(
        "profiles",
        nargs="+",
        type=InputFile,
        metavar="PROFILE",
        help="every host's profile (a file, or an embedded profile's name: `qemu-errata profiles`)",
    )
    sub.add_argument("-o", "--output", metavar="MODEL", help="write the model here")
    sub.add_argument("--json", action="store_true", help="print the model (or refusal) as JSON")
    sub.add_argument(
        "--pin-midr",
        nargs="?",
        const="first",
        metavar="MIDR",
        help="every guest sees this MIDR on every host (default: the first PROFILE's, of its "
        "first CPU type); "
        "needs KVM_CAP_ARM_WRITABLE_IMP_ID_REGS (Linux >= 6.15) on every host",
    )
    add_vmm_option(sub)
    add_accept_option(sub)
    sub.set_defaults(run=_cmd_baseline)

    sub = add_command(commands, "check")
    sub.add_argument(
        "model", type=InputFile, metavar="MODEL", help="the pool model (from baseline -o)"
    )
    sub.add_argument(
        "profile",
        type=InputFile,
        metavar="PROFILE",
        help="the host's profile (a file, or an embedded profile's name)",
    )
    sub.add_argument("--json", action="store_true", help="print the verdict as JSON")
    add_vmm_option(sub)
    add_accept_option(sub)
    sub.set_defaults(run=_cmd_check)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _cmd_baseline(args: argparse.Namespace) -> int:
    profiles = [read_profile_argument(path) for path in args.profiles]
    pinned = None if args.pin_midr is None else _midr_argument(args.pin_midr)
    accepted = accepted_names(args)
    vmm = deciding_vmm(args.vmm)
    if not args.json:
        say_unknown_masks(profiles)
    try:
        model = baseline_with(profiles, vmm, accepted=accepted)
    except IncompatiblePoolError as refused:
        what_to_do = _what_to_do(profiles, vmm, accepted, refused)
        if args.pin_midr is not None and _lost_mitigations_only(refused):
            pins = _pinned_hazards(profiles, vmm, pinned, accepted, refused)
            if pins:
                refused = IncompatiblePoolError([*refused.blockers, *pins])
                what_to_do += " " + _PIN_ADVICE
        return _refused(args, profiles, refused, what_to_do)
    if args.pin_midr is not None:
        try:
            hosts = hosts_of(profiles)
            model = accepting(pin_midr(model, profiles, pinned), accepted, hosts)
            refusals = pool_refusals(model, vmm, load_catalogue(), hosts)
            if refusals:
                raise IncompatiblePoolError(refusals)
        except IncompatiblePoolError as refused:
            return _refused(args, profiles, refused, _PIN_ADVICE)
    if args.output:
        write_json(args.output, model.to_json())
    cost = _errata_cost(model)
    if args.json:
        _print_json(baseline_json(model, cost))
    else:
        print(describe_model(model, args.output, cost, vmm.describe()))
    return ExitStatus.OK


_PIN_ADVICE = "Pin no MIDR, or leave those hosts out."
# The CPUs that take a mitigation from others in the list, by cause.
_TAKERS = {
    SAFE_LIST: "the CPUs on the kernel's safe list",
    FORCED_OFF: "the CPUs whose erratum forces it off",
}


def _lost_mitigations_only(refused: IncompatiblePoolError) -> bool:
    return all(getattr(b, "reason", None) == Reason.LOST_MITIGATION for b in refused.blockers)


def _pinned_hazards(
    profiles: Sequence[HostProfile],
    vmm: Vmm,
    pinned: int | None,
    accepted: Sequence[str],
    refused: IncompatiblePoolError,
) -> list[Blocker]:
    """What the pinned MIDR loses besides the pool's own lost mitigations (already in
    ``refused``), so that one refusal names every loss to accept; none when the MIDR
    cannot be pinned (that refusal comes once the losses are accepted)."""
    catalogue = load_catalogue()
    hosts = hosts_of(profiles)
    try:
        model = accepting(
            pin_midr(baseline(profiles, catalogue, vmm), profiles, pinned), accepted, hosts
        )
    except IncompatiblePoolError:
        return []
    said = {b.message for b in refused.blockers}
    return [b for b in pool_refusals(model, vmm, catalogue, hosts) if b.message not in said]


def _refused(
    args: argparse.Namespace,
    profiles: Sequence[HostProfile],
    refused: IncompatiblePoolError,
    what_to_do: str,
) -> int:
    if args.json:
        _print_json(refusal_json(profiles, refused))
    else:
        print("\n".join(refusal_lines(profiles, refused, what_to_do)))
    return ExitStatus.NO


def _midr_argument(text: str) -> int | None:
    if text == "first":
        return None
    try:
        return int(text, 16)
    except ValueError:
        raise InputError(f"--pin-midr {text}: not a hexadecimal MIDR") from None


def say_unknown_masks(profiles: Sequence[HostProfile]) -> None:
    """One line up front for profiles without writable masks, not one per field."""
    unknown = [p.host for p in profiles if p.writable_masks is None and p.id_registers]
    if unknown:
        print(
            f"Note: {', '.join(unknown)} {'was' if len(unknown) == 1 else 'were'} probed without "
            "KVM: nothing counts as writable there; probe on the host with --backend kvm, or "
            "use the kvm-* embedded profiles (`qemu-errata profiles`)"
        )


def _what_to_do(
    profiles: Sequence[HostProfile],
    vmm: Vmm,
    accepted: Sequence[str],
    refused: IncompatiblePoolError,
) -> str:
    """Which hosts do form a pool, type by type: the odd type out, or the largest sets of
    types; and ``plan`` when it would propose pools for all of them (and more than one
    pool per type). For lost mitigations alone: how to accept them or keep the CPUs that
    take them apart."""
    if _lost_mitigations_only(refused):
        causes = {b.values.get("cause") for b in refused.blockers}
        takers = [words for cause, words in _TAKERS.items() if cause in causes]
        return (
            f"Accept each lost mitigation by name, or pool {' and '.join(takers)} "
            "apart from those that need it (`qemu-errata plan` proposes such a split)."
        )
    types_only = [h for b in refused.blockers if b.reason == Reason.TYPES_ONLY for h in b.values]
    if types_only:
        return (
            f"A sysfs profile has no ID registers to pool: probe {', '.join(types_only)} on "
            "the host with the kvm backend (`qemu-errata probe -o FILE`) and use that profile."
        )
    types = group_hosts(profiles)
    plan = (
        " `qemu-errata plan` with the same profiles proposes the fewest pools they form."
        if len(types) > 1 and all(_forms_pool([t.profile], vmm, accepted) for t in types)
        else ""
    )
    if len(types) > MAX_HOSTS_FOR_SUBSETS:
        return f"These {plural(len(profiles), 'host')} are of {len(types)} types.{plan}"
    named = [replace(t.profile, host=_like(t)) for t in types]
    pools = largest_pools(named, lambda subset: _forms_pool(subset, vmm, accepted))
    if not pools:
        return "No two of these host types form a pool: each needs a pool of its own."
    if len(pools[0]) == len(types) - 1:
        odd = [next(p.host for p in named if p.host not in pool) for pool in pools]
        return f"The odd one out: {' or '.join(odd)} (the others form a pool without it).{plan}"
    subsets = "; ".join(" + ".join(pool) for pool in pools)
    return f"The largest pools these host types form ({len(pools[0])} each): {subsets}.{plan}"


def _like(host_type: HostType) -> str:
    """``40 hosts like rack01-n1-h000``, or the one host's name."""
    count = len(host_type.hosts)
    return host_type.hosts[0] if count == 1 else f"{count} hosts like {host_type.hosts[0]}"


def _forms_pool(profiles: Sequence[HostProfile], vmm: Vmm, accepted: Sequence[str]) -> bool:
    """Whether ``baseline`` with this VMM and these accepted names takes ``profiles``."""
    try:
        baseline_with(profiles, vmm, accepted=accepted)
    except IncompatiblePoolError:
        return False
    return True


def _errata_cost(model: PoolModel) -> Cost:
    """What each target implementation alone makes every (Linux >= 6.15) guest work around."""
    targets = list(model.target_implementations)
    registers = {**model.id_registers, **model.firmware_registers}
    return [(t, added_by(load_errata_table(), targets, t, registers)) for t in targets]


def _cmd_check(args: argparse.Namespace) -> int:
    model, profile = read_model(args.model), read_profile_argument(args.profile)
    named = (*model.accepted_lost_mitigations, *accepted_names(args))
    model = accepting(model, named, hosts_of([profile]))
    if not args.json:
        say_unknown_masks([profile])
    result = check_with(model, profile, deciding_vmm(args.vmm))
    targets = list(model.target_implementations)
    table = load_errata_table()
    registers = {**model.id_registers, **model.firmware_registers}
    cost = [
        (i.target, added_by(table, targets, i.target, registers)) for i in profile.implementations
    ]
    if args.json:
        _print_json(check_json(result, cost))
    else:
        print(describe_check(result, cost))
    return ExitStatus.OK if result.ok else ExitStatus.NO
