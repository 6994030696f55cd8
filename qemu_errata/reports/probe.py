"""``probe --verbose``: what a probe read and from where, told from the profile it made.

Pure and standard library only, as the probe is (it also runs inside nested hosts).
"""

from __future__ import annotations

from qemu_errata.core.cpulist import named_cpus
from qemu_errata.core.midr import Midr
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.words import plural

PREFIX = "qemu-errata probe: "


def probe_narration(profile: HostProfile, seconds: float) -> list[str]:
    """Lines for stderr, one per thing the probe learnt, and where it learnt it."""
    provenance = profile.provenance
    backend = provenance.get("backend")
    lines = [f"--backend {backend}, {seconds:.2f} s, host name {profile.host}"]
    if backend == "kvm":
        lines.extend(_kvm(profile))
    elif backend == "qemu":
        lines.extend(_qemu(profile))
    if "sysfs_root" in provenance:
        lines.append(f"CPU types from {provenance['sysfs_root']}/devices/system/cpu:")
    lines.extend(
        f"  {named_cpus(i.cpus)}: {Midr(i.midr).describe()}" for i in profile.implementations
    )
    if provenance.get("cpus_without_identity"):
        cpus = named_cpus(provenance["cpus_without_identity"])
        lines.append(f"  {cpus}: no identity in sysfs (offline?): not in the profile")
    if profile.timer_frequency_hz is not None:
        source = provenance.get("timer_frequency_source", "the vCPU's CNTFRQ_EL0")
        lines.append(f"timer frequency {profile.timer_frequency_hz} Hz, from {source}")
    return [PREFIX + line for line in lines]


def probe_written(profile: HostProfile, output: str) -> str:
    """``probe -o FILE``'s line for stdout: what was probed and where the profile went."""
    provenance = profile.provenance
    backend = provenance.get("backend")
    if backend == "kvm":
        probed = f"the KVM of Linux {provenance.get('kernel')}"
    elif backend == "qemu":
        probed = f"CPU model {provenance.get('qemu_cpu')} of QEMU {provenance.get('qemu')}"
    else:
        probed = f"the CPU types in {provenance.get('sysfs_root')} (sysfs: no ID registers)"
    return f"Probed {probed}: profile of host {profile.host} written to {output}."


def _kvm(profile: HostProfile) -> list[str]:
    provenance = profile.provenance
    features = ", ".join(provenance.get("vcpu_features", [])) or "none"
    lines = [
        f"KVM of Linux {provenance.get('kernel')}: a scratch VM, one vCPU with {features}",
        f"{_registers(profile)} read with KVM_GET_ONE_REG",
    ]
    not_offered = provenance.get("registers_not_offered", [])
    if not_offered:
        lines.append(f"not offered by this KVM (0 in the profile): {', '.join(not_offered)}")
    at_el0 = provenance.get("registers_read_at_el0", [])
    if at_el0:
        lines.append(f"read by this process at EL0 instead: {', '.join(at_el0)}")
    if profile.writable_masks is None:
        lines.append("writable masks: this kernel cannot tell them (nothing counts as writable)")
    else:
        lines.append(
            f"writable masks of {plural(len(profile.writable_masks), 'register')} "
            "(KVM_ARM_GET_REG_WRITABLE_MASKS)"
        )
    return lines


def _qemu(profile: HostProfile) -> list[str]:
    provenance = profile.provenance
    lines = [
        f"QEMU {provenance.get('qemu')}, CPU model {provenance.get('qemu_cpu')} under TCG: "
        f"{_registers(profile)} read by the vCPU (mrs)",
        "writable masks: not observable from QEMU",
    ]
    absent = provenance.get("not_implemented_read_as_zero", [])
    if absent:
        lines.append(f"not implemented by the model (0 in the profile): {', '.join(absent)}")
    return lines


def _registers(profile: HostProfile) -> str:
    return (
        f"{plural(len(profile.id_registers), 'ID register')}, "
        f"{plural(len(profile.firmware_registers), 'firmware register')}, "
        f"{plural(len(profile.gic_registers), 'GIC register')}"
    )
