"""The libvirt hook, run the way libvirt runs it: the installed script as a subprocess.

Each test gives the hook its own HOME (hook.toml), a sysfs tree standing for
the host's CPUs, the domain XML on stdin and libvirt's argv, and checks the
exit status, stdout (always empty: it would replace the XML), the one-line
refusal on stderr and the decision log.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from support.hook_home import HookHome
from support.pool_oracle import model_from_pool_element

import libvirt_hooks.guard as guard_module
from libvirt_hooks import domain as fast_domain
from libvirt_hooks.config import read_flat_toml
from libvirt_hooks.constants import MAX_XML_BYTES, POOL_NAMESPACE_PREFIX_BYTES
from qemu_errata.commands import main as cli
from qemu_errata.commands.hook import MARKER, SCRIPT_NAME
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.pool_namespace import POOL_NAMESPACE as NAMESPACE
from qemu_errata.core.record import replace
from qemu_errata.testbed.sysfs_tree import write_cpu_identity
from qemu_errata.vmm.pool_element import pool_element

N1 = 0x414FD0C1  # Arm Neoverse-N1 r4p1
A76 = 0x414FD0B1  # Arm Cortex-A76 r4p1
A55 = 0x411FD050  # Arm Cortex-A55 r1p0
A64FX = 0x461F0010  # Fujitsu A64FX r1p0
ISAR0 = "ID_AA64ISAR0_EL1"
N1_ISAR0 = 0x100010211120
GUARDED_OPS = [("migrate", "begin"), ("restore", "begin"), ("prepare", "begin")]
OTHER_OPS = [
    ("start", "begin"),
    ("started", "begin"),
    ("stopped", "end"),
    ("release", "end"),
    ("reconnect", "begin"),
    ("attach", "begin"),
    ("migrate", "end"),
    ("restore", "end"),
]


# --- building the inputs ----------------------------------------------------------------


def model(
    *targets: tuple[int, int | None],
    timer: int | None = None,
    id_registers: Mapping[str, int] | None = None,
) -> PoolModel:
    return PoolModel(
        id_registers=dict(id_registers or {}),
        target_implementations=TargetImplementations(
            TargetImplementation(midr, revidr, None) for midr, revidr in targets
        ),
        timer_frequency_hz=timer,
    )


def domain_xml(
    name: str = "vm1",
    pool: PoolModel | None = None,
    *,
    vcpus: int = 2,
    cpuset: str | None = None,
    pins: Mapping[int, str] | None = None,
    placement: str | None = None,
) -> bytes:
    domain = etree.Element("domain", type="qemu")
    etree.SubElement(domain, "name").text = name
    vcpu = etree.SubElement(domain, "vcpu")
    vcpu.text = str(vcpus)
    if cpuset is not None:
        vcpu.set("cpuset", cpuset)
    if placement is not None:
        vcpu.set("placement", placement)
    if pins:
        cputune = etree.SubElement(domain, "cputune")
        for number, pinned in pins.items():
            etree.SubElement(cputune, "vcpupin", vcpu=str(number), cpuset=pinned)
    metadata = etree.SubElement(domain, "metadata")
    etree.SubElement(metadata, "{urn:example:other}note").text = "unrelated metadata"
    if pool is not None:
        metadata.append(pool_element(pool))
    return etree.tostring(domain)


def pool_xml_with(change: str, value: str | None) -> bytes:
    """A pool domain whose metadata is damaged in one way (see the cases below)."""
    root = etree.fromstring(domain_xml(pool=model((N1, None), timer=25_000_000)))
    pool = root.find(f"metadata/{{{NAMESPACE}}}pool")
    assert pool is not None
    target = pool.find(f"{{{NAMESPACE}}}targets/{{{NAMESPACE}}}implementation")
    timer = pool.find(f"{{{NAMESPACE}}}timer")
    assert target is not None
    assert timer is not None
    if change == "version":
        pool.set("version", value or "")
    elif change == "midr":
        target.set("midr", value or "")
    elif change == "timer":
        timer.set("frequency", value or "")
    elif change == "no targets":
        target.getparent().remove(target)  # type: ignore[union-attr]
    elif change == "two pools":
        pool.getparent().append(pool_element(model((A64FX, None))))  # type: ignore[union-attr]
    elif change == "group":
        registers = etree.SubElement(pool, f"{{{NAMESPACE}}}registers", group=value or "")
        etree.SubElement(registers, f"{{{NAMESPACE}}}register", name="MIDR_EL1", value="0x1")
    elif change == "two timers":
        pool.append(etree.fromstring(etree.tostring(timer)))
    return etree.tostring(root)


def write_sysfs(root: Path, cpus: Mapping[int, tuple[int, int]]) -> Path:
    """A sysfs tree as arm64 Linux shows it: cpuN/regs/identification/{midr,revidr}_el1."""
    for cpu, (midr, revidr) in cpus.items():
        write_cpu_identity(root, cpu, midr, revidr)
    (root / "devices" / "system" / "cpu" / "online").write_text(f"0-{max(cpus)}\n")
    return root


# --- running the hook ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hook as `qemu-errata hook install` writes it."""
    hooks_dir = tmp_path_factory.mktemp("hooks") / "qemu.d"
    assert cli.main(["hook", "install", "--hooks-dir", str(hooks_dir)]) == 0
    return hooks_dir / SCRIPT_NAME


@pytest.fixture
def host(tmp_path: Path) -> HookHome:
    """An Arm Neoverse-N1 host with 4 CPUs, configured with the defaults."""
    host = HookHome(tmp_path)
    write_sysfs(host.sysfs, dict.fromkeys(range(4), (N1, 0)))
    host.configure()
    return host


def run_hook(
    hook: Path,
    host: HookHome,
    xml: bytes,
    op: str = "migrate",
    subop: str = "begin",
    *,
    name: str = "vm1",
) -> subprocess.CompletedProcess[str]:
    """Run the hook as libvirt does: argv, XML on stdin, libvirt's environment."""
    environment = {"HOME": str(host.home), "PATH": os.environ["PATH"], "LC_ALL": "C"}
    return subprocess.run(
        [str(hook), name, op, subop, "-"],
        input=xml.decode(),
        capture_output=True,
        text=True,
        env=environment,
        timeout=30,
        check=False,
    )


def assert_allowed(result: subprocess.CompletedProcess[str]) -> None:
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def assert_refused(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """One line on stderr (no traceback), nothing on stdout; the line."""
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("qemu-errata: refused the ")
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


# --- ops and VMs the hook leaves alone --------------------------------------------------


@pytest.mark.parametrize(("op", "subop"), OTHER_OPS)
def test_unguarded_ops_exit_at_once_without_reading_stdin(
    hook: Path, host: HookHome, op: str, subop: str
) -> None:
    xml = domain_xml(pool=model((A64FX, None)))  # would be refused on this host
    reader, writer = os.pipe()
    os.write(writer, xml)
    os.close(writer)
    environment = {"HOME": str(host.home), "PATH": os.environ["PATH"]}
    with os.fdopen(reader, "rb") as stdin:
        result = subprocess.run(
            [str(hook), "vm1", op, subop, "-"],
            stdin=stdin,
            capture_output=True,
            env=environment,
            timeout=30,
            check=False,
        )
        unread = stdin.read()
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert unread == xml
    assert host.log_lines() == []


@pytest.mark.parametrize(("op", "subop"), GUARDED_OPS)
def test_a_vm_without_pool_metadata_passes_even_with_a_broken_host(
    hook: Path, tmp_path: Path, op: str, subop: str
) -> None:
    host = HookHome(tmp_path)  # no sysfs tree at all
    host.write("this is [not toml\n")
    assert_allowed(run_hook(hook, host, domain_xml(pool=None), op, subop))


def test_the_namespace_outside_our_metadata_is_not_a_pool_vm(hook: Path, host: HookHome) -> None:
    root = etree.fromstring(domain_xml(pool=None))
    etree.SubElement(root, "description").text = f"see {NAMESPACE}"
    assert_allowed(run_hook(hook, host, etree.tostring(root)))
    assert host.log_lines() == []


def test_a_large_non_pool_xml_passes_and_a_large_pool_xml_is_refused(
    hook: Path, host: HookHome
) -> None:
    root = etree.fromstring(domain_xml(pool=None))
    etree.SubElement(root, "description").text = "x" * (MAX_XML_BYTES + 1)
    assert_allowed(run_hook(hook, host, etree.tostring(root)))
    root.find("metadata").append(pool_element(model((N1, None))))  # type: ignore[union-attr]
    assert_refused(run_hook(hook, host, etree.tostring(root)), "larger than")


# --- decisions ----------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "subop"), GUARDED_OPS)
def test_a_host_in_the_list_is_allowed_and_logged(
    hook: Path, host: HookHome, op: str, subop: str
) -> None:
    assert_allowed(run_hook(hook, host, domain_xml(pool=model((N1, None), (A76, None))), op, subop))
    [line] = host.log_lines()
    assert f"domain='vm1' op={op} host=[CPUs 0-3 MIDR {N1:#x} REVIDR 0x0] outcome=allowed" in line


@pytest.mark.parametrize(
    ("op", "what"), [("migrate", "incoming migration"), ("restore", "restore")]
)
def test_a_host_outside_the_list_is_refused_with_an_actionable_line(
    hook: Path, host: HookHome, op: str, what: str
) -> None:
    write_sysfs(host.sysfs, {4: (A64FX, 0)})  # one more CPU, of another kind
    xml = domain_xml("web-7", model((N1, None), (A76, 0x1)))
    line = assert_refused(
        run_hook(hook, host, xml, op, name="web-7"),
        f"refused the {what} of VM 'web-7'",
        f"CPU 4 is Fujitsu A64FX r1p0 (MIDR {A64FX:#x}) REVIDR 0x0",
        f"[Arm Cortex-A76 r4p1 (MIDR {A76:#x}) REVIDR 0x1, Arm Neoverse-N1 r4p1 (MIDR {N1:#x})]",
        "pin its vCPUs to CPUs 0-3",
        "`qemu-errata baseline`",
    )
    assert "apply" not in line  # never advise overwriting the VM's pool model
    assert "start_policy" not in line  # only starts have a policy
    [logged] = host.log_lines()
    assert "domain='web-7'" in logged
    assert f"host=[CPUs 0-3 MIDR {N1:#x} REVIDR 0x0; CPU 4 MIDR {A64FX:#x} REVIDR 0x0]" in logged
    assert f"outcome=refused | {line}" in logged


def test_a_safe_listed_cpu_in_the_list_refuses_a_host_that_needs_the_mitigation(
    hook: Path, host: HookHome
) -> None:
    # Linux >= 6.15 guests read the Spectre-BHB safe list with is_midr_in_range_list(), which
    # answers for ANY target: a Cortex-A55 in the list turns it off on this Neoverse-N1,
    # whose CPU the Spectre-BHB loop list names (it needs the mitigation).
    pool = model((N1, None), (A55, None))
    line = assert_refused(
        run_hook(hook, host, domain_xml("web-7", pool), name="web-7"),
        "refused the incoming migration of VM 'web-7': Spectre-BHB LOST on Arm Neoverse-N1 "
        "r4p1: Arm Cortex-A55 r1p0 is on the kernel's safe list",
        "run it on a host of its pool that does not need it",
        "--accept-lost-mitigation Spectre-BHB -o MODEL`, then `qemu-errata apply MODEL",
    )
    assert f"outcome=refused | {line}" in host.log_lines()[0]
    # Accepted by name in the pool model (its metadata): allowed.
    accepted = replace(pool, accepted_lost_mitigations=("Spectre-BHB",))
    assert_allowed(run_hook(hook, host, domain_xml(pool=accepted)))
    # On a Cortex-A55 host nothing is lost.
    a55 = HookHome(host.home / "a55")
    write_sysfs(a55.sysfs, dict.fromkeys(range(4), (A55, 0)))
    a55.configure()
    assert_allowed(run_hook(hook, a55, domain_xml(pool=pool)))


def test_revidr_must_match_where_the_list_gives_one(hook: Path, host: HookHome) -> None:
    assert_refused(run_hook(hook, host, domain_xml(pool=model((N1, 0x1)))), "REVIDR 0x1")
    assert_allowed(run_hook(hook, host, domain_xml(pool=model((N1, 0x0)))))
    assert_allowed(run_hook(hook, host, domain_xml(pool=model((N1, None)))))


@pytest.mark.parametrize(
    ("policy", "status", "outcome"),
    [
        (None, 1, "refused"),
        ("enforce", 1, "refused"),
        ("warn", 0, "allowed (start_policy warn)"),
        ("ignore", 0, "allowed (start_policy ignore)"),
    ],
)
def test_start_policy(
    hook: Path, host: HookHome, policy: str | None, status: int, outcome: str
) -> None:
    host.configure(start_policy=policy)
    result = run_hook(hook, host, domain_xml(pool=model((A64FX, None))), "prepare")
    assert (result.returncode, result.stdout) == (status, "")
    if status:
        assert_refused(result, "refused the start of VM 'vm1'", 'start_policy = "warn"')
    else:
        assert result.stderr == ""
    [line] = host.log_lines()
    assert f"outcome={outcome}" in line


@pytest.mark.parametrize("op", ["migrate", "restore"])
def test_start_policy_does_not_weaken_migrations_and_restores(
    hook: Path, host: HookHome, op: str
) -> None:
    host.configure(start_policy="ignore")
    assert_refused(run_hook(hook, host, domain_xml(pool=model((A64FX, None))), op))


# --- big.LITTLE hosts and pinned vCPUs --------------------------------------------------


@pytest.fixture
def big_little(host: HookHome) -> HookHome:
    """CPUs 0-3 Cortex-A55, 4-7 Cortex-A76."""
    for cpu in range(4):
        (host.sysfs / "devices/system/cpu" / f"cpu{cpu}/regs/identification/midr_el1").write_text(
            f"0x{A55:016x}\n"
        )
    write_sysfs(host.sysfs, dict.fromkeys(range(4, 8), (A76, 0)))
    return host


def test_big_little_host_is_refused_when_one_implementation_is_missing(
    hook: Path, big_little: HookHome
) -> None:
    assert_refused(
        run_hook(hook, big_little, domain_xml(pool=model((A76, None)))),
        "CPUs 0-3 are Arm Cortex-A55",
        "pin its vCPUs to CPUs 4-7",
    )
    # Both in the list: the Cortex-A55 (on the Spectre-BHB safe list) takes Spectre-BHB from
    # the guests on the A76 cores too, so the pool must accept that by name.
    both = model((A76, None), (A55, None))
    assert_refused(run_hook(hook, big_little, domain_xml(pool=both)), "Spectre-BHB LOST")
    accepted = replace(both, accepted_lost_mitigations=("Spectre-BHB",))
    assert_allowed(run_hook(hook, big_little, domain_xml(pool=accepted)))
    [_, _, allowed] = big_little.log_lines()
    assert f"host=[CPUs 0-3 MIDR {A55:#x} REVIDR 0x0; CPUs 4-7 MIDR {A76:#x} REVIDR 0x0]" in allowed


@pytest.mark.parametrize(
    "placement",
    [
        {"cpuset": "4-7"},
        {"cpuset": "0-7,^0,^1,^2,^3"},
        {"pins": {0: "4", 1: "5-6"}},
        {"cpuset": "0-3", "pins": {0: "4", 1: "7"}},
        {"vcpus": 1, "pins": {0: "5", 3: "0"}},
    ],
)
def test_vcpus_pinned_to_listed_cpus_are_allowed(
    hook: Path, big_little: HookHome, placement: dict[str, Any]
) -> None:
    xml = domain_xml(pool=model((A76, None)), **placement)
    assert_allowed(run_hook(hook, big_little, xml, "restore"))


@pytest.mark.parametrize(
    "placement",
    [
        {"cpuset": "3-4"},
        {"pins": {0: "4"}},
        {"cpuset": "4-7", "placement": "auto"},
        {"cpuset": "0-3", "pins": {0: "4"}},
    ],
)
def test_vcpus_that_may_run_on_unlisted_cpus_are_refused(
    hook: Path, big_little: HookHome, placement: dict[str, Any]
) -> None:
    xml = domain_xml(pool=model((A76, None)), **placement)
    assert_refused(run_hook(hook, big_little, xml), "Arm Cortex-A55")


def test_the_unlisted_cpus_a_pinned_vm_may_run_on_are_named_in_a_sentence(
    hook: Path, big_little: HookHome
) -> None:
    xml = domain_xml(pool=model((A76, None)), cpuset="3-4")
    assert_refused(
        run_hook(hook, big_little, xml),
        f"this host's CPU 3, which the VM may run on, is Arm Cortex-A55 r1p0 (MIDR {A55:#x}) "
        "REVIDR 0x0, not in the VM's target implementation list",
    )


def test_a_cpuset_naming_a_missing_cpu_is_refused(hook: Path, host: HookHome) -> None:
    assert_refused(
        run_hook(hook, host, domain_xml(pool=model((N1, None)), cpuset="2-9")),
        "the VM may run on CPUs 4-9, which this host does not have (it has CPUs 0-3)",
        "sysfs_root",
    )


# --- timer frequency and the cached host profile ----------------------------------------


def test_timer_frequency_must_match_the_pool(hook: Path, host: HookHome) -> None:
    xml = domain_xml(pool=model((N1, None), timer=25_000_000))
    host.configure(timer_frequency_hz=25_000_000)
    assert_allowed(run_hook(hook, host, xml))
    host.configure(timer_frequency_hz=1_000_000_000)
    assert_refused(run_hook(hook, host, xml), "timer runs at 1000000000 Hz", "pool at 25000000 Hz")


def test_unknown_host_timer_frequency_is_allowed_with_a_note(hook: Path, host: HookHome) -> None:
    assert_allowed(run_hook(hook, host, domain_xml(pool=model((N1, None), timer=25_000_000))))
    [line] = host.log_lines()
    assert "this host's is unknown" in line


def write_profile(host: HookHome, midr: int, isar0: int, timer: int = 25_000_000) -> Path:
    path = host.home / "host-profile.json"
    path.write_text(
        json.dumps(
            {
                "format": "qemu-errata/host-profile/1",
                "host": "n1-host",
                "implementations": [{"midr": f"{midr:#x}", "revidr": "0x0", "cpus": [0, 1, 2, 3]}],
                "id_registers": {ISAR0: f"{isar0:#x}"},
                "writable_masks": None,
                "timer_frequency_hz": timer,
            }
        )
    )
    host.configure(host_profile=str(path))
    return path


def test_host_profile_that_can_present_the_model_is_allowed(hook: Path, host: HookHome) -> None:
    write_profile(host, N1, N1_ISAR0)
    xml = domain_xml(pool=model((N1, None), timer=25_000_000, id_registers={ISAR0: N1_ISAR0}))
    assert_allowed(run_hook(hook, host, xml))


def test_host_profile_that_cannot_present_the_model_is_refused(hook: Path, host: HookHome) -> None:
    write_profile(host, N1, N1_ISAR0 & ~0xF0)  # no AES on this host, not writable
    xml = domain_xml(pool=model((N1, None), id_registers={ISAR0: N1_ISAR0}))
    assert_refused(
        run_hook(hook, host, xml),
        "cannot present the VM's CPU model",
        f"{ISAR0}.AES",
        "run it on another host of its pool",
    )


def test_host_profile_timer_frequency_is_checked(hook: Path, host: HookHome) -> None:
    write_profile(host, N1, N1_ISAR0, timer=1_000_000_000)
    xml = domain_xml(pool=model((N1, None), timer=25_000_000, id_registers={ISAR0: N1_ISAR0}))
    assert_refused(run_hook(hook, host, xml), "timer frequency 1000000000 Hz")


def test_a_stale_host_profile_is_refused(hook: Path, host: HookHome) -> None:
    path = write_profile(host, A76, N1_ISAR0)
    xml = domain_xml(pool=model((N1, None), id_registers={ISAR0: N1_ISAR0}))
    assert_refused(
        run_hook(hook, host, xml),
        f"host_profile {path} does not describe",
        "`qemu-errata probe -o FILE`) and set host_profile to FILE",
    )


def test_an_unreadable_host_profile_is_refused(hook: Path, host: HookHome) -> None:
    host.configure(host_profile=str(host.home / "missing.json"))
    assert_refused(
        run_hook(hook, host, domain_xml(pool=model((N1, None)))), "missing.json: cannot read"
    )


# --- fail closed ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (domain_xml(pool=model((N1, None)))[:-20], "not well-formed"),
        (
            b'<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            + domain_xml(pool=model((N1, None))).replace(b"vm1", b"&x;"),
            "has a DOCTYPE",
        ),
        (
            domain_xml(pool=model((N1, None)))
            .replace(b"<domain", b"<guest", 1)
            .replace(b"</domain>", b"</guest>"),
            "root element is <guest>",
        ),
        (pool_xml_with("version", "2"), "version '2' is not 1"),
        (pool_xml_with("midr", "0xzz"), "midr='0xzz'> is not a number"),
        (pool_xml_with("timer", "fast"), "frequency='fast'> is not a number"),
        (pool_xml_with("no targets", None), "lists no target implementation"),
        (pool_xml_with("two pools", None), "two qemu-errata pool metadata elements"),
        (domain_xml(pool=model((N1, None)), cpuset="0-x"), "cpuset '0-x'"),
        (domain_xml(pool=model((N1, None)), cpuset="3-1"), "range '3-1' is empty"),
        (domain_xml(pool=model((N1, None)), pins={0: "^1"}), "names no CPU"),
        (domain_xml(pool=model((N1, None)), vcpus=0), "<vcpu> '0' is not a number of vCPUs"),
        (pool_xml_with("group", "cpu_registers"), "unknown register group 'cpu_registers'"),
        (pool_xml_with("two timers", None), "two <timer> elements"),
    ],
    ids=[
        "truncated",
        "doctype",
        "root",
        "version",
        "midr",
        "timer",
        "no-targets",
        "two-pools",
        "cpuset",
        "range",
        "empty-cpuset",
        "no-vcpus",
        "register-group",
        "two-timers",
    ],
)
def test_malformed_pool_vm_xml_is_refused(
    hook: Path, host: HookHome, xml: bytes, message: str
) -> None:
    line = assert_refused(run_hook(hook, host, xml), message)
    assert "Traceback" not in line
    [logged] = host.log_lines()
    assert "host=[not read] outcome=refused" in logged


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('sysfs_root = "/sys"\npolicy = "warn"\n', "unknown key 'policy'"),
        ("sysfs_root = [not toml\n", "not valid TOML"),
        ('start_policy = "sometimes"\n', "start_policy must be one of enforce, warn, ignore"),
        ('sysfs_root = "relative/sys"\n', "sysfs_root must be an absolute path"),
        ('timer_frequency_hz = "25MHz"\n', "timer_frequency_hz must be a whole number from 1 to"),
        ("timeout_seconds = 0\n", "timeout_seconds must be a whole number from 1 to 3600"),
        ('log = "hook.log"\n', 'log must be "syslog" or an absolute file path'),
    ],
    ids=["unknown-key", "toml", "policy", "relative", "timer", "timeout", "log"],
)
def test_bad_configuration_refuses_pool_vms(
    hook: Path, host: HookHome, config: str, message: str
) -> None:
    host.write(config)
    assert_refused(
        run_hook(hook, host, domain_xml(pool=model((N1, None)))),
        "bad hook configuration",
        str(host.home / ".config/qemu-errata/hook.toml"),
        message,
    )


def test_an_unreadable_sysfs_refuses_pool_vms(hook: Path, host: HookHome) -> None:
    host.configure(sysfs_root=str(host.home / "no-such-sys"))
    assert_refused(
        run_hook(hook, host, domain_xml(pool=model((N1, None)))),
        "cannot list CPUs",
        "sysfs_root = ",
    )


def test_without_configuration_the_hook_reads_the_real_sysfs(hook: Path, tmp_path: Path) -> None:
    if os.path.exists("/etc/qemu-errata/hook.toml"):
        pytest.skip("this machine has a system-wide hook configuration")
    result = run_hook(hook, HookHome(tmp_path), domain_xml(pool=model((A64FX, None))))
    if os.path.exists("/sys/devices/system/cpu/cpu0/regs/identification/midr_el1"):
        assert_refused(result, "not in the VM's target implementation list")  # not an A64FX
    else:
        assert_refused(result, "/sys/devices/system/cpu/cpu0/regs/identification/midr_el1")


def test_a_register_file_that_is_no_file_is_refused_at_once(hook: Path, host: HookHome) -> None:
    """A FIFO planted as a register file is refused, never waited on."""
    midr = host.sysfs / "devices/system/cpu/cpu2/regs/identification/midr_el1"
    midr.unlink()
    os.mkfifo(midr)
    host.configure(timeout_seconds=30)
    started = time.monotonic()
    assert_refused(
        run_hook(hook, host, domain_xml(pool=model((N1, None)))), f"{midr}: not a regular file"
    )
    assert time.monotonic() - started < 10


def test_the_hook_bounds_its_own_time(
    host: HookHome, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever hangs (every read is non-blocking now: a stalled file system, say) ends in a
    refusal at timeout_seconds; the stall is a sysfs read that sleeps, in-process."""

    def stalled(sysfs_root: str, cpus: object) -> None:
        time.sleep(10)

    monkeypatch.setattr(guard_module, "read_host_implementations", stalled)
    monkeypatch.setenv("HOME", str(host.home))
    host.configure(timeout_seconds=1)
    started = time.monotonic()
    xml = domain_xml(pool=model((N1, None)))
    assert guard_module.guard("vm1", "migrate", "incoming migration", xml) == 1
    assert time.monotonic() - started < 5
    line = capsys.readouterr().err
    assert "the check did not finish within 1 s (timeout_seconds" in line


def test_a_warning_whose_vm_log_write_stalls_still_records_within_the_bound(
    host: HookHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start_policy warn on a stalled file system: the VM's libvirt log write runs out of
    time, and the decision log's write after it is bounded too (libvirt waits for the hook
    forever); both stalls are writes that sleep, in-process."""

    def stalled(*_: object) -> None:
        time.sleep(10)

    monkeypatch.setattr(guard_module, "write_domain_log", stalled)
    monkeypatch.setattr(guard_module, "append_to_log", stalled)
    monkeypatch.setenv("HOME", str(host.home))
    host.configure(start_policy="warn", timeout_seconds=1)
    started = time.monotonic()
    assert guard_module.guard("vm1", "prepare", "start", domain_xml(pool=model((A64FX, None)))) == 0
    assert time.monotonic() - started < 5


# --- install and uninstall ---------------------------------------------------------------


def test_install_is_idempotent_and_uninstall_removes_only_ours(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hooks_dir = tmp_path / "hooks" / "qemu.d"
    for expected in ("installed", "already installed, unchanged"):
        assert cli.main(["hook", "install", "--hooks-dir", str(hooks_dir)]) == 0
        assert expected in capsys.readouterr().out
    script = hooks_dir / SCRIPT_NAME
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith("#!/")
    assert MARKER in script.read_text()
    assert sorted(p.name for p in hooks_dir.iterdir()) == [SCRIPT_NAME]  # no temporary left
    for expected in ("removed", "not installed, nothing to remove"):
        assert cli.main(["hook", "uninstall", "--hooks-dir", str(hooks_dir)]) == 0
        output = capsys.readouterr().out
        assert expected in output
    assert not script.exists()


def test_install_says_the_daemons_must_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["hook", "install", "--hooks-dir", str(tmp_path)]) == 0
    assert "restart the running ones" in capsys.readouterr().out


@pytest.mark.parametrize("action", ["install", "uninstall"])
def test_a_foreign_file_of_our_name_is_never_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    foreign = tmp_path / SCRIPT_NAME
    foreign.write_text("#!/bin/sh\nexit 0\n")
    assert cli.main(["hook", action, "--hooks-dir", str(tmp_path)]) == 2
    assert "not installed by qemu-errata" in capsys.readouterr().err
    assert foreign.read_text() == "#!/bin/sh\nexit 0\n"


# --- the fast reader agrees with the metadata module ------------------------------------


@pytest.mark.parametrize(
    "pool",
    [
        model((N1, None)),
        model((N1, 0x0), (A76, 0x2), timer=100_000_000),
        model((A64FX, None), id_registers={ISAR0: N1_ISAR0}, timer=1),
        replace(model((N1, None), (A55, None)), accepted_lost_mitigations=("Spectre-BHB", "X y")),
    ],
)
def test_fast_reader_reads_what_metadata_writes(pool: PoolModel) -> None:
    xml = domain_xml(pool=pool)
    fast = fast_domain.read_domain(xml).pool
    assert fast is not None
    element = etree.fromstring(xml).find(f"metadata/{{{NAMESPACE}}}pool")
    assert element is not None
    full = model_from_pool_element(element, "test")
    assert [(t.midr, t.revidr, t.aidr) for t in fast.targets] == [
        (t.midr, t.revidr, t.aidr) for t in full.target_implementations
    ]
    assert fast.timer_frequency_hz == full.timer_frequency_hz
    assert tuple(fast.accepted) == full.accepted_lost_mitigations
    assert fast_domain.NAMESPACE == NAMESPACE
    assert NAMESPACE.encode().startswith(POOL_NAMESPACE_PREFIX_BYTES)


@pytest.mark.parametrize(
    ("cpuset", "cpus"),
    [
        ("0", {0}),
        ("0-3", {0, 1, 2, 3}),
        ("0-3,^2", {0, 1, 3}),
        (" 1 , 4-5 ", {1, 4, 5}),
        ("^0,0-1", {0, 1}),  # left to right, like libvirt's virBitmapParse
    ],
)
def test_parse_cpuset(cpuset: str, cpus: set[int]) -> None:
    mask = fast_domain.parse_cpuset(cpuset)
    assert {cpu for cpu in range(mask.bit_length()) if mask >> cpu & 1} == cpus


# --- the flat configuration reader agrees with tomllib ----------------------------------

# A flat document: unique bare keys set to a basic string without escapes or a decimal
# integer, with blank and comment lines and spaces or tabs around the parts.
_KEY = st.from_regex(r"[A-Za-z_-][A-Za-z0-9_-]{0,11}", fullmatch=True)
_SPACE = st.sampled_from(["", " ", "\t", "  "])
_TEXT = st.text(
    st.characters(
        exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"),
        exclude_characters='"\\',
    )
    | st.sampled_from(" \t"),
    max_size=12,
)
_VALUE = st.one_of(_TEXT.map(lambda t: f'"{t}"'), st.integers(0, 10**12).map(str))
_ASSIGNMENT = st.builds(
    lambda key, spaces, value: f"{spaces[0]}{key}{spaces[1]}={spaces[2]}{value}{spaces[3]}",
    _KEY,
    st.tuples(_SPACE, _SPACE, _SPACE, _SPACE),
    _VALUE,
)
_OTHER_LINE = st.one_of(st.just(""), _SPACE, _TEXT.map(lambda t: f"# {t}"))


@st.composite
def flat_documents(draw: st.DrawFn) -> list[str]:
    """Lines of a flat document with at least one key."""
    assignments = draw(st.lists(_ASSIGNMENT, min_size=1, max_size=6, unique_by=_key_of))
    lines = list(assignments)
    for line in draw(st.lists(_OTHER_LINE, max_size=3)):
        lines.insert(draw(st.integers(0, len(lines))), line)
    return lines


def _key_of(line: str) -> str:
    return line.partition("=")[0].strip(" \t")


# Lines the flat reader must leave to tomllib (valid TOML or not).
NOT_FLAT = [
    "[table]",
    "a.b = 1",
    "1x = 1",
    '"quoted" = 1',
    'k = "tab\\tescaped"',
    "k = 'literal'",
    'k = """multi"""',
    'k = "x" # comment',
    "k = 007",
    "k = 1_000",
    "k = -1",
    "k = +1",
    "k = 1.5",
    "k = true",
    "k = [1]",
    "k = {a = 1}",
    'k = "\x01"',
    "k",
    "= 1",
]


@given(flat_documents(), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_flat_toml_reader_reads_every_flat_document_as_tomllib_does(
    lines: list[str], newline: str, final_newline: bool
) -> None:
    text = newline.join(lines) + (newline if final_newline else "")
    assert read_flat_toml(text) == tomllib.loads(text) != {}


@given(
    flat_documents(),
    st.sampled_from(NOT_FLAT) | st.just("duplicate"),
    st.integers(0, 6),
    st.sampled_from(["\n", "\r\n"]),
)
def test_flat_toml_reader_leaves_anything_else_to_tomllib(
    lines: list[str], other: str, where: int, newline: str
) -> None:
    # A key set twice (which tomllib refuses) is one more thing only tomllib may judge.
    first = next(line for line in lines if "=" in line and not line.lstrip().startswith("#"))
    extra = first if other == "duplicate" else other
    lines.insert(min(where, len(lines)), extra)
    assert read_flat_toml(newline.join(lines)) is None


def test_flat_toml_reader_reads_a_hook_configuration() -> None:
    text = 'sysfs_root = "/srv/sys"\n# policy\nstart_policy="warn"\r\ntimer_frequency_hz = 25000000'
    assert read_flat_toml(text) == {
        "sysfs_root": "/srv/sys",
        "start_policy": "warn",
        "timer_frequency_hz": 25_000_000,
    }


def test_a_non_pool_vm_is_not_judged_on_its_vcpus() -> None:
    xml = domain_xml(pool=None, vcpus=0, cpuset="x")
    assert fast_domain.read_domain(xml).pool is None
