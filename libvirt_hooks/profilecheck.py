"""The cached host-profile check: can this host present the VM's register values?

Only run when the hook configuration names ``host_profile`` (a file written by ``qemu-
errata probe`` on this host): it judges the pool model the hook read from the metadata
with ``migration.arrival``, the decision ``qemu-errata can-migrate`` takes too, loading
the register catalogue. A VM carries its VMM's pins, else the values of the host it
started on; that host is unknown here, so the VM is taken to carry the model's values.
libvirt runs ``prepare`` for an incoming migration as for a start, so a start is judged
the same way: what a VM started here would carry that older hosts of its pool refuse
(PSCI 1.3 of Linux 7.2 on a 6.12 host) is a note, not a refusal, and that older host's
hook refuses the migration. The VMM is the newest known: the hook runs no program to find
the local QEMU. Target implementations are judged by the live sysfs check instead (it
knows the VM's cpuset); the profile must describe the CPUs that check saw, or it is stale.
"""

from __future__ import annotations

import json

from libvirt_hooks import trust
from libvirt_hooks.domain import Pool
from libvirt_hooks.hostcpus import HostImplementation
from libvirt_hooks.poolmodel import pool_model
from qemu_errata.core.migration import arrival
from qemu_errata.core.pool import IDENTITY_REGISTER, Reason, check
from qemu_errata.core.profile import HostProfile, profile_from_json
from qemu_errata.core.vmms import newest_known
from qemu_errata.errors import InputError

MAX_PROFILE_BYTES = 4 << 20


def profile_problems(
    pool: Pool,
    profile_path: str,
    host: list[HostImplementation],
    notes: list[str],
) -> list[str]:
    """Why this host cannot present the VM's model per its cached profile (empty: it can)."""
    model = pool_model(pool)
    remedy = (
        "probe this host again (`qemu-errata probe -o FILE`) and set host_profile to FILE; "
        "`qemu-errata hook check` shows the details"
    )
    profile = read_host_profile(profile_path, remedy)
    stale = [i for i in host if not describes(profile, i)]
    if stale:
        return [
            f"host_profile {profile_path} does not describe this host's "
            f"{'; '.join(str(i) for i in stale)}: {remedy}"
        ]
    vmm = newest_known()
    result = arrival(model, profile, vmm)
    notes.extend(result.notes)
    notes.extend(
        p.message
        for p in check(model, profile, vmm=vmm).problems
        if p.reason is Reason.NOT_SETTABLE
    )
    problems = [p.message for p in result.problems if p.register != IDENTITY_REGISTER]
    if not problems:
        return []
    return [
        f"this host cannot present the VM's CPU model (host_profile {profile_path}): "
        f"{'; '.join(problems)}; run it on another host of its pool"
    ]


def read_host_profile(path: str, remedy: str, *, details: bool = False) -> HostProfile:
    """The cached host profile at ``path``, read as the hook reads its own files.

    A file others could write is refused (``trust``). The problem with a bad
    profile is named only with ``details`` (``hook check``, run by root on this
    host): a refusal goes to whoever started the VM and never quotes a file.
    (``qemu_errata.files`` reads the CLI's files; the lead may unify the two.)
    """
    try:
        content = trust.read_trusted(path, "host_profile", MAX_PROFILE_BYTES)
    except InputError as error:
        raise InputError(f"{error} ({remedy})") from None
    try:
        return profile_from_json(json.loads(content), path)
    except (ValueError, RecursionError, InputError) as error:
        why = f": {str(error)[:500]}" if details else ""
        raise InputError(
            f"host_profile {path} is not a valid host profile{why} ({remedy})"
        ) from None


def describes(profile: HostProfile, cpu: HostImplementation) -> bool:
    """Whether the profile lists this CPU type of the host."""
    return any(i.target.matches(cpu.midr, cpu.revidr, None) for i in profile.implementations)
