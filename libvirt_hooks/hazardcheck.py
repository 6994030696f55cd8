"""The lost-mitigation check: would the VM's guests skip here a mitigation this host needs?

Since Linux 6.15 a guest matches the Spectre-v2, Spectre-v4, Spectre-BHB and KPTI safe
lists against every target implementation (``is_midr_in_range_list()`` answers "yes" for
any): one safe-listed implementation in the VM's list turns the mitigation off on every
host; Cavium ThunderX erratum 27456 in the list forces KPTI off; a pinned MIDR hides a
host's errata from older guests (or brings that erratum). The check refuses a pool VM
whose guests would lose here what this host's CPUs need, unless the pool model accepts it
by name (its metadata's ``<accepted name>``). The hook knows this host's MIDR/REVIDR only:
a host needs a mitigation where an affected list names its CPU or an ID field the guest
sees enables it (``core.errata.hazards``, ``evident_only``), so a pool ``baseline``
accepted is never refused for a field the pool hides. Loads the errata tables: the guard
runs it only for a VM with several target implementations or a pinned MIDR.
"""

from __future__ import annotations

from libvirt_hooks.domain import Pool
from libvirt_hooks.hostcpus import HostImplementation
from libvirt_hooks.poolmodel import pool_model
from qemu_errata.core.errata import ErrataTable, known_kernels, load_errata_table, series_of
from qemu_errata.core.errata.hazards import Hazard, accept_option, model_hazards, unaccepted
from qemu_errata.core.record import replace


def hazard_problems(pool: Pool, host: list[HostImplementation]) -> list[str]:
    """What the VM's guests would skip here that this host's CPUs need, unless accepted."""
    model = pool_model(pool)
    here = {
        target
        for i in host
        if (target := model.target_implementations.find(i.midr, i.revidr, None)) is not None
    }
    found = model_hazards(model, evident_only=True, tables=_newest_of_each_series())
    hazards = unaccepted(found, pool.accepted)
    lost = [_by_series(h) for h in hazards if here & set(h.needed_on)]
    return [
        f"{hazard.describe()}{_consequence(hazard)}; run it "
        f"on a host of its pool that does not need it, or accept the loss in its pool model "
        f"(`qemu-errata baseline PROFILE... {accept_option(hazard.name)} -o MODEL`, then "
        f"`qemu-errata apply MODEL --connect URI --domain NAME`)"
        for hazard in lost
    ]


def _consequence(hazard: Hazard) -> str:
    """What its guests lose here (a hazard whose guests are Vulnerable anyway says so)."""
    return (
        "" if hazard.vulnerable_anyway else ": its guests would run without it on this host's CPUs"
    )


def _newest_of_each_series() -> list[ErrataTable]:
    """One table per guest kernel series: the MIDR lists are facts of a series (errata.toml
    gives each list's kernels by series), and resolving every point release's table would
    cost a pool decision most of a second. Read through the strict reader like every table
    (the guard installs the checked copies first, so a decision parses no TOML)."""
    newest: dict[str, str] = {}
    for release in known_kernels():
        newest[series_of(release)] = release
    return [load_errata_table(release) for release in newest.values()]


def _by_series(hazard: Hazard) -> Hazard:
    """The hazard naming the series it was judged for (``7.2``), not their newest release."""
    series = tuple(dict.fromkeys(series_of(k) for k in hazard.guest_kernels))
    return replace(hazard, guest_kernels=series)
