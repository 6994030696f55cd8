"""``qemu-errata demo``: the whole product, end to end, on embedded defaults (shell).

Three emulated hosts are probed with real QEMU, two of them form a pool, and
a pool VM on the test bed (real libvirt daemons, the real hook) migrates
inside the pool and is refused outside it. When a nested Linux 7.2 KVM host
image is cached, a real Linux guest of the pool boots under real KVM on a
nested host-a and says what it enables (guest-view), its list naming a
safe-listed Cortex-A53 too: the mitigations that takes from host-a are named
as hazards and the guest is seen to skip them; otherwise that step is
skipped, and says why (the demo downloads no Debian packages; a build takes
seconds, as measured). Every step prints
what it did and what it found; the demo exits 0 only if every expectation
held, and cleans up after itself either way.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from qemu_errata.commands import Subcommands, add_command
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.errata import kernel_view, load_errata_table, release_of
from qemu_errata.core.errata.hazards import model_hazards
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.midr import Midr
from qemu_errata.core.pool import PoolModel, baseline, check
from qemu_errata.core.profile import HostProfile
from qemu_errata.core.record import replace
from qemu_errata.core.vulnerabilities import VULNERABILITIES_DIRECTORY
from qemu_errata.core.words import plural
from qemu_errata.errors import ExitStatus, IncompatiblePoolError
from qemu_errata.nested.boot import run_nested
from qemu_errata.nested.carry import plan_transfer
from qemu_errata.nested.guest_userspace import pinned_busybox
from qemu_errata.nested.image import (
    KERNELS,
    NestedImage,
    build_time,
    cache_root,
    cached_image,
)
from qemu_errata.processes import temporary_directory
from qemu_errata.vmm.dialects import Dialect, vmm_config

# Pool hosts A and B, and host C outside the pool: QEMU CPU models.
HOST_MODELS = (("host-a", "neoverse-n1"), ("host-b", "cortex-a76"), ("host-c", "a64fx"))
VM_NAME = "demo-vm"
SHOWN_PROBLEMS = 4
# The guest step: a nested KVM host of host-a's CPU model with this kernel, which is also
# the guest's; the pool as that kernel's KVM presents the pool's two CPU models.
GUEST_KERNEL = "7.2"
GUEST_NESTED_SECONDS = 600
# The guest step's list also names a Cortex-A53 r0p4: on the kernel's Spectre-v4 and
# Spectre-BHB safe lists, which Linux >= 6.15 guests match against ANY listed CPU.
SAFE_LISTED = TargetImplementation(0x410FD034, 0x0, None)

T = TypeVar("T")


@dataclass
class Demo:
    """Prints numbered steps and records whether each expectation held."""

    steps: int
    done: int = 0
    failures: list[str] = field(default_factory=list)

    def step(self, title: str, action: Callable[[], T]) -> T:
        self.done += 1
        print(f"[{self.done}/{self.steps}] {title} ...", flush=True)
        started = time.monotonic()
        result = action()
        print(f"      done in {time.monotonic() - started:.1f} s", flush=True)
        return result

    def expect(self, held: bool, what: str) -> None:
        print(f"      {'ok' if held else 'FAILED'}: {what}", flush=True)
        if not held:
            self.failures.append(what)

    def skip(self, title: str, why: str) -> None:
        self.done += 1
        print(f"[{self.done}/{self.steps}] {title}: skipped: {why}", flush=True)

    @staticmethod
    def say(text: str) -> None:
        print(f"      {text}", flush=True)


# What the demo shows and what it does not, said before it starts.
INTRODUCTION = """\
The demo probes three hosts emulated by QEMU (TCG), computes a pool model, and runs
a pool VM on three real libvirt daemons with the real hook: it migrates inside
the pool and is refused outside it. What it does not show: QEMU's probe cannot see
a kernel's writable masks, so step 2 takes them from the embedded kvm-6.12-*
profiles (real Linux 6.12 KVM on nested hosts of the same CPU models); and a TCG
guest cannot be given the lowered fields nor the target list, so the VM presents
its CPU model's own registers (only the hook's decisions are real). The test bed
runs each host as a system user qe-tb-N, created on first use and left in place
for later runs (userdel qe-tb-N removes them)."""


def register(commands: Subcommands) -> None:
    """Register ``demo`` on the ``qemu-errata`` subcommands."""
    sub = add_command(
        commands,
        "demo",
        description=INTRODUCTION,
    )
    sub.set_defaults(run=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    del args  # the demo takes no options: it runs on embedded defaults
    demo = Demo(steps=7)
    print(INTRODUCTION + "\n", flush=True)
    started = time.monotonic()
    profiles = demo.step("Probe three emulated hosts with real QEMU", lambda: _probe(demo))
    pool = demo.step(
        "Compute the pool model of host-a + host-b with real kernels' writable masks",
        lambda: _pool(demo, profiles),
    )
    if pool is not None:
        demo.step("Check whether host-c could join the pool", lambda: _check(demo, pool, profiles))
        _guest(demo)
        _on_test_bed(demo, pool, profiles)
    elapsed = time.monotonic() - started
    if demo.failures:
        print(
            f"Demo FAILED after {elapsed:.0f} s: {len(demo.failures)} expectation(s) did not "
            f"hold: {'; '.join(demo.failures)}"
        )
        return ExitStatus.NO
    print(f"Demo finished in {elapsed:.0f} s: every expectation held.")
    return ExitStatus.OK


def _probe(demo: Demo) -> list[HostProfile]:
    from qemu_errata.probe.qemu import probe_qemu  # noqa: PLC0415 (needs qemu.qmp: shell only)

    profiles = []
    for host, model in HOST_MODELS:
        profile = probe_qemu(model, host)
        implementation = profile.implementations[0]
        demo.say(
            f"{host}: QEMU -cpu {model}: {Midr(implementation.midr).describe()}, "
            f"{len(profile.id_registers)} ID registers, timer "
            f"{profile.timer_frequency_hz} Hz"
        )
        demo.expect(
            implementation.midr == _documented_midr(model),
            f"{host} reports the MIDR QEMU documents for {model}",
        )
        profiles.append(profile)
    return profiles


def _documented_midr(model: str) -> int:
    """QEMU 7.2's MIDR of each demo CPU model (facts file, section 6)."""
    return {"neoverse-n1": 0x414FD0C1, "cortex-a76": 0x414FD0B1, "a64fx": 0x461F0010}[model]


def _with_kernel_masks(profile: HostProfile) -> HostProfile:
    """The profile with the writable masks Linux 6.12's KVM reports for the same CPU model.

    QEMU cannot show which ID-register bits a kernel lets userspace write; the
    embedded ``kvm-6.12-<model>`` profiles hold what a real kernel said on a
    nested host emulating that model.
    """
    kernel_profile = load_embedded_profile(f"kvm-6.12-{profile.provenance['qemu_cpu']}")
    return replace(profile, writable_masks=kernel_profile.writable_masks)


def _pool(demo: Demo, profiles: list[HostProfile]) -> PoolModel | None:
    demo.say(
        "QEMU cannot show a kernel's writable masks: the demo takes those Linux 6.12's KVM "
        "reported on nested hosts of the same CPU models (embedded kvm-6.12-* profiles)"
    )
    members = [_with_kernel_masks(p) for p in profiles[:2]]
    try:
        model = baseline(members)
    except IncompatiblePoolError as refused:
        demo.expect(False, f"host-a + host-b form a pool ({refused})")
        return None
    demo.say("target implementation list (guests apply the errata workarounds of each):")
    for target in model.target_implementations:
        demo.say(f"  {Midr(target.midr).describe()}")
    demo.say(f"the pool loses {plural(len(model.losses), 'field')}:")
    for loss in model.losses:
        demo.say(f"  {loss.explain()}")
    demo.expect(len(model.target_implementations) == 2, "the target list holds both CPU types")
    demo.expect(all(check(model, p).ok for p in members), "host-a and host-b pass `check`")
    return model


def _check(demo: Demo, pool: PoolModel, profiles: list[HostProfile]) -> None:
    result = check(pool, _with_kernel_masks(profiles[2]))
    shown = result.problems[:SHOWN_PROBLEMS]
    for problem in shown:
        demo.say(f"  {problem.message}")
    if len(result.problems) > len(shown):
        demo.say(f"  ... and {len(result.problems) - len(shown)} more fields it cannot present")
    demo.expect(not result.ok, "host-c cannot join: its CPU is not in the target list")


def _guest(demo: Demo) -> None:
    title = f"Boot a Linux {GUEST_KERNEL} guest of the pool under real KVM: what does it enable"
    image = cached_image(KERNELS[GUEST_KERNEL])
    if image is None:
        demo.skip(
            title,
            f"no nested Linux {GUEST_KERNEL} KVM host image is cached in {cache_root()}, and "
            "the demo downloads none: `qemu-errata nested --rebuild --kernel "
            f"{GUEST_KERNEL}` builds one ({build_time()})",
        )
        return
    demo.step(title, lambda: _guest_view(demo, image))


def _guest_view(demo: Demo, image: NestedImage) -> None:
    cpus = [cpu for _, cpu in HOST_MODELS[:2]]
    pool = baseline([load_embedded_profile(f"kvm-{GUEST_KERNEL}-{cpu}") for cpu in cpus])
    demo.say(
        f"a KVM host presents what its kernel lets it: the pool here is of the same two CPU "
        f"models as Linux {GUEST_KERNEL}'s KVM reports them (embedded kvm-{GUEST_KERNEL}-* "
        f"profiles), and its list names {Midr(SAFE_LISTED.midr).name()} too (a CPU on the "
        f"kernel's Spectre-v4 and Spectre-BHB safe lists); guest-view runs on a nested "
        f"{cpus[0]} host (QEMU TCG) and boots that host's own kernel as the guest"
    )
    targets = TargetImplementations([*pool.target_implementations, SAFE_LISTED])
    model = replace(pool, target_implementations=targets)
    table = load_errata_table(release_of(image.kernel_release))
    hazards = model_hazards(model)
    for hazard in hazards:
        demo.say(f"HAZARD: {hazard.describe()}")
    demo.expect(bool(hazards), "`errata` names what the safe-listed CPU takes from the others")
    with temporary_directory("qemu-errata-demo-guest-") as scratch:
        path = scratch / "pool.json"
        path.write_text(json.dumps(model.to_json()), "utf-8")
        busybox = str(pinned_busybox())
        transfer = plan_transfer(["guest-view", str(path), "--json", "--busybox", busybox])
        result = run_nested(
            image,
            cpus[0],
            transfer.argv,
            inputs=transfer.inputs,
            timeout=GUEST_NESTED_SECONDS,
            carry_kernel=True,
        )
    if result.exit_status not in (ExitStatus.OK, ExitStatus.NO) or not result.stdout:
        for line in result.stderr.decode("utf-8", "replace").splitlines()[-5:]:
            demo.say(f"guest-view: {line}")
        demo.expect(False, "the guest got through its CPU feature detection")
        return
    view = json.loads(result.stdout)
    targets = view["target_implementations"]
    for line in targets["guest_log"]:
        demo.say(f"guest: smccc: KVM: {line}")
    demo.expect(
        len(targets["received"]) == len(model.target_implementations),
        f"the guest asked for the pool's {len(model.target_implementations)} target "
        "implementations and got them",
    )
    demo.expect(
        view["differing_registers"] == [], "the ID registers the guest read are the model's"
    )
    demo.say(f"the guest (booted in {view['boot_seconds']} s) enabled:")
    for erratum in view["errata"]:
        ids = ", ".join(erratum["ids"]) or "not in the errata table"
        shown = "" if erratum["ids"] == [erratum["description"]] else f" ({ids})"
        demo.say(f"  {erratum['description']}{shown}")
    registers = {**model.id_registers, **model.firmware_registers}
    # A 7.2 guest matches the errata against the whole list, as `errata` predicts.
    view_of_list = kernel_view(table, model.target_implementations, registers)
    certain, possible = view_of_list.expected_log()
    logged = {erratum["description"] for erratum in view["errata"]}
    demo.expect(
        logged - set(possible) == set(certain),
        f"what it enabled is what `qemu-errata errata --guest-kernel {table.kernel}` predicts "
        f"({plural(len(certain), 'workaround')})",
    )
    lost = {m.log: m.id for m in table.mitigations for h in hazards if h.name == m.id}
    demo.expect(
        not logged & set(lost),
        f"the guest on the {cpus[0]} host did not enable {', '.join(lost.values())}: LOST there, "
        "as `errata` warned (baseline, check, plan and the hook refuse such a pool unless "
        "--accept-lost-mitigation accepts each)",
    )
    demo.say(
        f"what it printed in {VULNERABILITIES_DIRECTORY}/spectre_v2: "
        f"{view['vulnerabilities'].get('spectre_v2')} (on a {cpus[0]} host, its guests having "
        f"lost {', '.join(h.name for h in hazards)})"
    )
    demo.expect(view["judgement"]["agrees"], view["judgement"]["summary"].rstrip("."))


def _on_test_bed(demo: Demo, pool: PoolModel, profiles: list[HostProfile]) -> None:
    # The test bed needs libvirt and lxml: imported here, not at CLI start.
    from qemu_errata.testbed.bed import TestBed  # noqa: PLC0415

    with temporary_directory("qemu-errata-demo-") as scratch, TestBed() as bed:
        hosts = demo.step(
            "Start the test bed: three libvirt hosts with the hook installed",
            lambda: _start_hosts(demo, bed, profiles, scratch),
        )
        domain = demo.step(
            "Start a pool VM on host-a with the model applied",
            lambda: _start_pool_vm(demo, hosts[0], pool),
        )
        demo.step(
            "Migrate the VM host-a -> host-b (in the pool), then to host-c (outside)",
            lambda: _migrations(demo, hosts, domain),
        )


def _start_hosts(demo: Demo, bed: Any, profiles: list[HostProfile], scratch: Path) -> list[Any]:
    from qemu_errata.commands.hook import SCRIPT_NAME, install  # noqa: PLC0415

    demo.say(install(scratch))
    bed.install_hook(scratch / SCRIPT_NAME)
    hosts: list[Any] = bed.start_hosts(profiles)
    for host in hosts:
        host.write_hook_config({"log": str(host.home / "hook.log")})
        demo.say(
            f"{host.name}: libvirt session daemon as user {host.user}, "
            f"sysfs CPUs {Midr(host.profile.implementations[0].midr).describe()}"
        )
    return hosts


def _start_pool_vm(demo: Demo, host: Any, pool: PoolModel) -> Any:
    from qemu_errata.testbed.bed import guest_xml  # noqa: PLC0415
    from qemu_errata.vmm.args import commandline_arguments  # noqa: PLC0415
    from qemu_errata.vmm.domain_xml import apply_model  # noqa: PLC0415
    from qemu_errata.vmm.pool_element import find_pool_element  # noqa: PLC0415

    config = vmm_config(pool, Dialect.QEMU_TCG, qemu_cpu="cortex-a76")
    domain_xml = guest_xml(VM_NAME, config.cpu_model)
    apply_model(domain_xml, pool, config, VM_NAME)
    for note in config.notes:
        demo.say(f"note: {note}")
    demo.say("QEMU arguments from the model: " + " ".join(commandline_arguments(config)))
    domain = host.start_guest(domain_xml)
    demo.expect(VM_NAME in host.active_guests(), f"{VM_NAME} runs on {host.name}")
    demo.expect(
        find_pool_element(_live_xml(domain)) is not None, "the running VM carries the pool metadata"
    )
    return domain


def _migrations(demo: Demo, hosts: list[Any], domain: Any) -> None:
    import libvirt  # noqa: PLC0415

    from qemu_errata.testbed.bed import migrate  # noqa: PLC0415
    from qemu_errata.vmm.libvirt_domain import ignore_libvirt_error  # noqa: PLC0415

    # The refusal is expected and shown below: keep libvirt from printing it to stderr too.
    libvirt.registerErrorHandler(ignore_libvirt_error, None)
    host_a, host_b, host_c = hosts
    domain = migrate(domain, host_b)
    demo.expect(
        VM_NAME in host_b.active_guests() and VM_NAME not in host_a.active_guests(),
        "host-a -> host-b succeeded: the VM runs on host-b",
    )
    try:
        migrate(domain, host_c)
    except libvirt.libvirtError as refused:
        line = str(refused).rsplit("unexpected exit status 1: ", 1)[-1].strip()
        demo.say(f"libvirt said: {line}")
        demo.expect("qemu-errata: refused" in line, "host-b -> host-c was refused by the hook")
    else:
        demo.expect(False, "host-b -> host-c was refused by the hook")
    demo.expect(
        domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
        and VM_NAME in host_b.active_guests()
        and VM_NAME not in host_c.active_guests(),
        "the VM is still running on host-b, and not on host-c",
    )


def _live_xml(domain: Any) -> Any:
    from qemu_errata.vmm.domain_xml import parse_domain  # noqa: PLC0415

    return parse_domain(domain.XMLDesc(0).encode(), VM_NAME).getroot()
