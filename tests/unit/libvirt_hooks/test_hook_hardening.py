"""The hook cannot be slipped past, trusts no one else's files, bounds its work, never
discloses a file, speaks only on stderr, and never lets a fault refuse an allowed VM.

Most tests run the installed script as libvirt does (argv, XML on stdin, HOME);
``provably_plain`` and the cpuset parser are tested directly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from support.hook_home import HookHome

from libvirt_hooks import decisionlog
from libvirt_hooks import domain as hook_domain
from libvirt_hooks import guard as guard_module
from libvirt_hooks import qemu as hook_qemu
from libvirt_hooks.constants import MAX_XML_BYTES
from libvirt_hooks.guard import guard
from libvirt_hooks.qemu import provably_plain
from qemu_errata.commands import main as cli
from qemu_errata.commands.hook import SCRIPT_NAME
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import PoolModel
from qemu_errata.core.pool_namespace import POOL_NAMESPACE as NAMESPACE
from qemu_errata.errors import DomainXmlError
from qemu_errata.testbed.sysfs_tree import write_cpu_identity
from qemu_errata.vmm.pool_element import pool_element

N1 = 0x414FD0C1
A64FX = 0x461F0010
NOBODY = 65534


def pool_xml(midr: int = A64FX, *, cpuset: str | None = None, name: str = "vm1") -> bytes:
    """A pool VM (targets: ``midr``) with 2 vCPUs; A64FX is not this host's CPU."""
    domain = etree.Element("domain", type="kvm")
    etree.SubElement(domain, "name").text = name
    vcpu = etree.SubElement(domain, "vcpu")
    vcpu.text = "2"
    if cpuset is not None:
        vcpu.set("cpuset", cpuset)
    model = PoolModel(
        id_registers={},
        target_implementations=TargetImplementations([TargetImplementation(midr, None, None)]),
    )
    etree.SubElement(domain, "metadata").append(pool_element(model))
    return etree.tostring(domain)


def plain_xml(description: str = "a plain VM") -> bytes:
    domain = etree.Element("domain", type="kvm")
    etree.SubElement(domain, "name").text = "plain"
    etree.SubElement(domain, "description").text = description
    return etree.tostring(domain)


class Host(HookHome):
    """A 4-CPU Neoverse-N1 host, configured."""

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        for cpu in range(4):
            write_cpu_identity(self.sysfs, cpu, N1)
        self.configure()


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hooks_dir = tmp_path_factory.mktemp("hooks") / "qemu.d"
    assert cli.main(["hook", "install", "--hooks-dir", str(hooks_dir)]) == 0
    return hooks_dir / SCRIPT_NAME


@pytest.fixture
def host(tmp_path: Path) -> Host:
    tmp_path.chmod(0o755)
    return Host(tmp_path)


def run(
    hook: Path,
    host: Host,
    xml: bytes,
    op: str = "migrate",
    *,
    name: str = "vm1",
    preexec: Callable[[], None] | None = None,
    stdin: Any = None,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(hook), name, op, "begin", "-"],
        input=None if stdin is not None else xml,
        stdin=stdin,
        capture_output=True,
        env={"HOME": str(host.home), "PATH": os.environ["PATH"], "LC_ALL": "C"},
        timeout=60,
        check=False,
        preexec_fn=preexec,
    )


def run_args(hook: Path) -> list[str]:
    return [str(hook), "vm1", "migrate", "begin", "-"]


def refused(result: subprocess.CompletedProcess[bytes], *fragments: str) -> str:
    assert result.returncode == 1, result.stderr
    assert result.stdout == b""
    [line] = result.stderr.decode().splitlines()
    for fragment in fragments:
        assert fragment in line
    return line


def allowed(result: subprocess.CompletedProcess[bytes]) -> None:
    assert (result.returncode, result.stdout) == (0, b""), result.stderr


# --- 1. no spelling of the namespace slips past -----------------------------------------------


@pytest.mark.parametrize(
    "spell",
    [
        lambda xml: xml.replace(b"pool:1", b"pool&#58;1"),
        lambda xml: xml.replace(b"urn:qemu", b"&#x75;rn:qemu"),
        lambda xml: (
            b'<!DOCTYPE domain [<!ENTITY ns "urn:qemu-errata:pool&#58;1">]>'
            + xml.replace(NAMESPACE.encode(), b"&ns;")
        ),
        lambda xml: ('<?xml version="1.0" encoding="UTF-16"?>' + xml.decode()).encode("utf-16"),
        lambda xml: ('<?xml version="1.0" encoding="UTF-16LE"?>' + xml.decode()).encode(
            "utf-16-le"
        ),
        lambda xml: ('<?xml version="1.0" encoding="IBM037"?>' + xml.decode()).encode("cp037"),
    ],
    ids=["char-ref", "hex-char-ref", "doctype-entity", "utf-16", "utf-16-no-bom", "ebcdic"],
)
def test_a_pool_vm_in_any_spelling_is_judged(
    hook: Path, host: Host, spell: Callable[[bytes], bytes]
) -> None:
    xml = spell(pool_xml())
    if not xml.startswith("<?xml".encode("cp037")):  # this libxml2 has no EBCDIC; others may
        parsed = etree.fromstring(xml)  # libxml2 (libvirt's parser) reads pool metadata in it
        assert parsed.find(f"metadata/{{{NAMESPACE}}}pool") is not None
    refused(run(hook, host, xml), "refused the incoming migration")


@pytest.mark.parametrize("version", ["2", "10"])
def test_pool_metadata_of_another_version_is_refused_as_such(
    hook: Path, host: Host, version: str
) -> None:
    xml = pool_xml(N1).replace(NAMESPACE.encode(), f"urn:qemu-errata:pool:{version}".encode())
    refused(run(hook, host, xml), f"pool metadata of version '{version}'", "reads version 1 only")


def test_a_non_blocking_stdin_with_no_data_yet_is_read_to_its_end(hook: Path, host: Host) -> None:
    reader, writer = os.pipe()
    os.set_blocking(reader, False)

    def write_later() -> None:
        time.sleep(0.5)
        os.write(writer, pool_xml())
        os.close(writer)

    thread = threading.Thread(target=write_later)
    thread.start()
    with os.fdopen(reader, "rb") as stdin:
        result = run(hook, host, b"", stdin=stdin)
    thread.join()
    refused(result, "not in the VM's target implementation list")


@pytest.mark.parametrize(
    ("xml", "plain"),
    [
        (plain_xml(), True),
        (b'<?xml version="1.0" encoding="UTF-8"?>' + plain_xml(), True),
        (b"<domain><description>caf\xc3\xa9 \xe2\x98\x83</description></domain>", True),
        (b"", True),
        (plain_xml("a & b"), False),  # &amp;: a reference
        (b"<!-- c -->" + plain_xml(), False),
        (b"\xef\xbb\xbf" + plain_xml(), False),
        (b'<?xml version="1.0" encoding="ISO-8859-1"?>' + plain_xml(), False),
        (plain_xml().decode().encode("utf-16"), False),
        (plain_xml("see urn:qemu-errata:pool:7"), False),
        (plain_xml().replace(b"plain", b"pl\xc0\xbain"), False),  # not UTF-8 (overlong)
    ],
)
def test_only_documents_that_cannot_carry_pool_metadata_skip_the_parse(
    xml: bytes, plain: bool
) -> None:
    assert provably_plain(xml) is plain


def test_a_plain_vm_that_needs_the_full_parse_is_still_left_alone(hook: Path, host: Host) -> None:
    host.config.write_text("not [toml\n")  # a broken configuration does not matter to it
    allowed(run(hook, host, plain_xml("a & b, see urn:qemu-errata:pool:1")))
    assert not host.log.exists()


# --- 2. files others could write are refused --------------------------------------------------


def test_a_hook_configuration_others_can_write_is_refused(hook: Path, host: Host) -> None:
    host.config.chmod(0o666)
    refused(run(hook, host, pool_xml(N1)), str(host.config), "writable by other users")


def test_a_hook_configuration_owned_by_another_user_is_refused(hook: Path, host: Host) -> None:
    os.chown(host.config, NOBODY, NOBODY)
    refused(run(hook, host, pool_xml(N1)), str(host.config), f"owned by uid {NOBODY}")


def test_a_configuration_directory_others_can_write_is_refused(hook: Path, host: Host) -> None:
    host.config.parent.chmod(0o777)
    refused(run(hook, host, pool_xml(N1)), str(host.config.parent), "writable by other users")


def test_a_host_profile_others_can_write_is_refused(hook: Path, host: Host) -> None:
    profile = host.home / "profile.json"
    profile.write_text("{}")
    profile.chmod(0o646)
    host.configure(host_profile=str(profile))
    refused(run(hook, host, pool_xml(N1)), f"host_profile {profile}", "writable by other users")


def test_a_log_link_planted_in_a_shared_directory_is_not_followed(hook: Path, host: Host) -> None:
    shared = host.home / "shared"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    victim = host.home / "victim"
    victim.write_text("precious\n")
    (shared / "hook.log").symlink_to(victim)
    os.chown(shared / "hook.log", NOBODY, NOBODY, follow_symlinks=False)
    host.configure(log=str(shared / "hook.log"))
    refused(run(hook, host, pool_xml(N1)), f"log {shared / 'hook.log'}")
    assert victim.read_text() == "precious\n"


def test_a_log_owned_by_another_user_is_refused(hook: Path, host: Host) -> None:
    host.log.write_text("")
    os.chown(host.log, NOBODY, NOBODY)
    refused(run(hook, host, pool_xml(N1)), f"log {host.log}", f"owned by uid {NOBODY}")


# --- 3. bounded work --------------------------------------------------------------------------


def test_a_huge_cpuset_is_refused_as_bad_input_at_once(hook: Path, host: Host) -> None:
    started = time.monotonic()
    refused(
        run(hook, host, pool_xml(N1, cpuset="0-4000000000")),
        "names a CPU past 8191",
    )
    assert time.monotonic() - started < 30


def test_cpusets_past_the_host_are_clipped_not_expanded() -> None:
    with pytest.raises(DomainXmlError, match="names a CPU past 8191"):
        hook_domain.parse_cpuset("0-8192")
    with pytest.raises(DomainXmlError, match="longer than"):
        hook_domain.parse_cpuset("0," * hook_domain.MAX_CPUSET_CHARS)
    assert hook_domain.parse_cpuset("0-8191").bit_length() == 8192
    assert hook_domain.parse_cpuset("^2,0-3") == 0b1111  # left to right, like libvirt


def test_an_out_of_range_timeout_is_a_configuration_error(hook: Path, host: Host) -> None:
    host.configure(timeout_seconds=99999999999)
    allowed(run(hook, host, plain_xml(f"see {NAMESPACE}")))  # not a pool VM: untouched
    refused(
        run(hook, host, pool_xml(N1)),
        "bad hook configuration",
        "timeout_seconds must be a whole number from 1 to 3600",
    )


def test_the_hook_memory_stays_bounded_on_a_large_adversarial_input(hook: Path, host: Host) -> None:
    """Thousands of distinct vcpupin cpusets, each naming every CPU up to 8191."""
    domain = etree.fromstring(pool_xml(N1))
    domain.find("vcpu").text = "4096"  # type: ignore[union-attr]
    cputune = etree.SubElement(domain, "cputune")
    for vcpu in range(4096):
        etree.SubElement(cputune, "vcpupin", vcpu=str(vcpu), cpuset=f"0-8191,^{vcpu}")
    status, peak_kib = peak_rss_kib(hook, host, etree.tostring(domain))
    assert status == 1  # refused: CPUs 4-8191 are not this host's
    assert peak_kib < 100 * 1024


def test_nesting_past_libxml2s_limit_is_refused_before_it_costs_memory() -> None:
    xml = pool_xml(N1).replace(b"<name>", b"<a>" * 300 + b"</a>" * 300 + b"<name>")
    with pytest.raises(DomainXmlError, match="deeper than 256"):
        hook_domain.read_domain(xml)


# --- 4. no disclosure, bounded lines ----------------------------------------------------------


def test_an_unreadable_register_file_is_named_not_quoted(hook: Path, host: Host) -> None:
    midr = host.sysfs / "devices/system/cpu/cpu1/regs/identification/midr_el1"
    midr.write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    line = refused(run(hook, host, pool_xml(N1)), str(midr), "not a 64-bit register value")
    assert "secret" not in line
    assert "secret" not in host.log.read_text()


def test_refusal_and_log_lines_are_bounded(hook: Path, host: Host) -> None:
    line = refused(run(hook, host, pool_xml(), name="x" * 100_000), "more characters left out")
    assert len(line) < 5000
    [logged] = host.log.read_text().splitlines()
    assert len(logged) < 5100
    assert "more characters left out" in logged


# --- 5. nothing on stdout ---------------------------------------------------------------------


def test_with_stderr_closed_a_refusal_never_goes_to_stdout(hook: Path, host: Host) -> None:
    result = run(hook, host, pool_xml(), preexec=lambda: os.close(2))
    assert (result.returncode, result.stdout) == (1, b"")
    assert "outcome=refused" in host.log.read_text()


# --- 6. faults never refuse, the configuration is visible -------------------------------------


def test_a_log_that_cannot_be_opened_does_not_refuse_an_allowed_vm(hook: Path, host: Host) -> None:
    host.configure(log=str(host.home / "no-such-dir" / "hook.log"))
    result = run(hook, host, pool_xml(N1))
    assert (result.returncode, result.stdout) == (0, b"")
    [line] = result.stderr.decode().splitlines()
    assert line.startswith("qemu-errata: allowed VM 'vm1', but the decision was not recorded in")


def test_a_refusal_that_cannot_be_logged_is_still_one_line(hook: Path, host: Host) -> None:
    host.configure(log=str(host.home / "no-such-dir" / "hook.log"))
    line = refused(run(hook, host, pool_xml()), "not in the VM's target implementation list")
    assert line.endswith("hook.log (No such file or directory)")


def test_warn_never_blocks_a_start(hook: Path, host: Host) -> None:
    host.configure(start_policy="warn", log=str(host.home / "no-such-dir" / "hook.log"))
    result = run(hook, host, pool_xml(A64FX), "prepare")
    assert (result.returncode, result.stdout) == (0, b"")


def test_the_log_names_the_configuration_file_used(hook: Path, host: Host) -> None:
    allowed(run(hook, host, pool_xml(N1)))
    [logged] = host.log.read_text().splitlines()
    assert f"config={host.config}" in logged


def test_hook_check_shows_the_effective_configuration(
    hook: Path, host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    host.configure(timeout_seconds=5)
    assert (
        cli.main(["hook", "check", "--home", str(host.home), "--hooks-dir", str(hook.parent)]) == 0
    )
    out = capsys.readouterr().out
    assert f"precedence: {host.config}, else /etc/qemu-errata/hook.toml" in out
    assert f"configuration: {host.config}" in out
    assert "timeout_seconds = 5  (set)" in out
    assert "start_policy = 'enforce'  (default)" in out
    assert f"this host: CPUs 0-3 MIDR {N1:#x} REVIDR 0x0" in out


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda host: host.config.chmod(0o666), "writable by other users"),
        (lambda host: host.configure(timeout_seconds=0), "timeout_seconds must be"),
        (lambda host: host.configure(sysfs_root=str(host.home)), "cannot list CPUs"),
        (lambda host: host.configure(log=str(host.home / "none" / "x.log")), "takes no lines"),
    ],
    ids=["untrusted", "range", "sysfs", "log"],
)
def test_hook_check_fails_on_any_problem(
    hook: Path,
    host: Host,
    capsys: pytest.CaptureFixture[str],
    change: Callable[[Host], None],
    problem: str,
) -> None:
    change(host)
    arguments = ["hook", "check", "--home", str(host.home), "--hooks-dir", str(hook.parent)]
    assert cli.main(arguments) == 2
    captured = capsys.readouterr()
    assert problem in captured.out + captured.err


def test_without_a_configuration_file_the_refusal_says_there_is_none(
    hook: Path, tmp_path: Path
) -> None:
    if os.path.exists("/etc/qemu-errata/hook.toml") or os.path.exists(
        "/sys/devices/system/cpu/cpu0/regs/identification/midr_el1"
    ):
        pytest.skip("this machine has a hook configuration or arm64 sysfs")
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        [str(hook), "vm1", "migrate", "begin", "-"],
        input=pool_xml(N1),
        capture_output=True,
        env={"HOME": str(home), "PATH": os.environ["PATH"]},
        timeout=60,
        check=False,
    )
    line = refused(result, "sysfs_root is the default '/sys': no hook configuration file")
    assert "'/sys' in /etc/qemu-errata/hook.toml" not in line


# --- 7. round 3: links, the sysfs tree, logging, memory ---------------------------------------


def shared_directory(host: Host) -> Path:
    shared = host.home / "shared"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)  # like /tmp: others may add entries, not replace ours
    return shared


def test_another_users_link_in_a_sticky_directory_is_not_followed(hook: Path, host: Host) -> None:
    profile = host.home / "profile.json"
    profile.write_text("{}")
    link = shared_directory(host) / "profile.json"
    link.symlink_to(profile)
    os.chown(link, NOBODY, NOBODY, follow_symlinks=False)
    host.configure(host_profile=str(link))
    refused(
        run(hook, host, pool_xml(N1)),
        f"{link} is a symbolic link owned by uid {NOBODY} in a directory other users can write",
    )


def test_roots_link_in_a_sticky_directory_is_followed(hook: Path, host: Host) -> None:
    profile = host.home / "profile.json"
    profile.write_text("{}")
    link = shared_directory(host) / "profile.json"
    link.symlink_to(profile)
    host.configure(host_profile=str(link))
    line = refused(run(hook, host, pool_xml(N1)), "is not a valid host profile")  # read it
    assert "symbolic link" not in line


def cpu_directory(host: Host, cpu: int) -> Path:
    return host.sysfs / f"devices/system/cpu/cpu{cpu}"


@pytest.mark.parametrize(
    ("plant", "problem"),
    [
        (lambda h: os.chown(cpu_directory(h, 1) / "regs", NOBODY, NOBODY), "owned by uid 65534"),
        (lambda h: (cpu_directory(h, 2) / "regs").chmod(0o777), "writable by other users"),
        (lambda h: (h.sysfs / "devices/system").chmod(0o777), "writable by other users"),
        (lambda h: os.chown(h.sysfs / "devices/system/cpu", NOBODY, NOBODY), "owned by uid"),
    ],
    ids=["regs-of-another-user", "regs-writable", "system-writable", "cpu-of-another-user"],
)
def test_the_sysfs_cpu_tree_is_held_to_the_trust_rule(
    hook: Path, host: Host, plant: Callable[[Host], None], problem: str
) -> None:
    plant(host)
    refused(run(hook, host, pool_xml(N1)), problem)


def test_a_cpu_directory_that_is_a_link_is_not_followed(hook: Path, host: Host) -> None:
    """Another tree's CPU 1 (here one of the hook's own files) is never read through a link."""
    elsewhere = host.home / "elsewhere"
    cpu_directory(host, 1).rename(elsewhere)
    cpu_directory(host, 1).symlink_to(elsewhere)
    refused(run(hook, host, pool_xml(N1)), "cannot read the identity of CPU 1")


def test_a_stuck_syslog_never_holds_the_hook(
    host: Host, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A /dev/log whose reader is stuck: libc's syslog() would block forever; ours gives up."""
    path = str(host.home / "log.sock")
    reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.bind(path)
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    filler.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:  # the reader's queue fills: the next send would block
            filler.sendto(b"x" * 1024, path)
    monkeypatch.setattr(decisionlog, "SYSLOG_SOCKET", path)
    monkeypatch.setenv("HOME", str(host.home))
    host.configure(log="syslog")
    started = time.monotonic()
    status = guard("vm1", "migrate", "incoming migration", pool_xml(N1))
    elapsed = time.monotonic() - started
    reader.close()
    filler.close()
    assert status == 0  # allowed: the decision stands unrecorded
    assert elapsed < decisionlog.SEND_SECONDS + 2
    assert "not recorded in syslog (the write did not finish in time)" in capsys.readouterr().err


def test_an_undecodable_home_still_logs_an_allowed_vm(hook: Path, host: Host) -> None:
    """libvirt passes HOME as bytes; one that is not UTF-8 reaches the log escaped."""
    home = os.fsencode(host.home) + b"/h\xffme"
    config = home + b"/.config/qemu-errata"
    os.makedirs(config)
    with open(config + b"/hook.toml", "wb") as stream:
        stream.write(host.config.read_bytes())
    result = subprocess.run(
        run_args(hook),
        input=pool_xml(N1),
        capture_output=True,
        env={b"HOME": home, b"PATH": os.environb[b"PATH"]},
        timeout=60,
        check=False,
    )
    allowed(result)
    assert result.stderr == b""
    assert "h\\udcffme" in host.log.read_text()  # the byte, escaped: the line stays UTF-8


def test_a_refusal_with_stderr_on_a_full_device_exits_1(hook: Path, host: Host) -> None:
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            run_args(hook),
            input=pool_xml(),
            stdout=subprocess.PIPE,
            stderr=full,
            env={"HOME": str(host.home), "PATH": os.environ["PATH"]},
            timeout=60,
            check=False,
        )
    assert (result.returncode, result.stdout) == (1, b"")
    assert "outcome=refused" in host.log.read_text()


def peak_rss_kib(hook: Path, host: Host, xml: bytes) -> tuple[int, int]:
    """The hook's exit status and peak RSS on ``xml`` (a launcher measures its only child)."""
    document = host.home / "input.xml"
    document.write_bytes(xml)
    launcher = (
        "import resource, subprocess, sys; "
        "r = subprocess.run(sys.argv[2:], stdin=open(sys.argv[1], 'rb'), capture_output=True); "
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    result = subprocess.run(
        ["/usr/bin/python3", "-I", "-S", "-c", launcher, str(document), *run_args(hook)],
        capture_output=True,
        text=True,
        env={"HOME": str(host.home), "PATH": os.environ["PATH"]},
        timeout=120,
        check=True,
    )
    status, peak = map(int, result.stdout.split())
    return status, peak


def filled(head: bytes, unit: bytes, tail: bytes) -> bytes:
    """``head``, ``unit`` repeated and ``tail``, MAX_XML_BYTES in all."""
    return head + unit * ((MAX_XML_BYTES - len(head) - len(tail)) // len(unit)) + tail


POOL_METADATA = etree.tostring(etree.fromstring(pool_xml(N1)).find("metadata"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "xml",
    [
        # Entity amplification: once 11 MB of XML took 2 GB.
        filled(
            b'<!DOCTYPE domain [<!ENTITY a "' + b"a" * 4000 + b'">]><domain a="', b"&a;", b'"/>'
        ),
        filled(b'<domain a="', b"&amp;", b'"/>'),
        # One character past U+FFFF makes Python hold a whole decoded string at 4 bytes a character.
        filled("<domain a='\U0001f600".encode(), b"a", b"'>" + POOL_METADATA + b"</domain>"),
        filled("<domain><name>\U0001f600".encode(), b"a", b"</name></domain>"),
        filled(b"<domain>" + POOL_METADATA, b"<a/>", b"</domain>"),
        filled(b"<?xml version='1.0' encoding='UTF-7'?><domain><name>", b"a", b"</name></domain>"),
        filled(b"<domain><name>", b"a", b"</name></domain>") + b"a" * (4 << 20),
        # 4096 distinct cpusets of 1,000 CPUs each, all kept until the check.
        b"<domain><vcpu>4096</vcpu><cputune>"
        + b"".join(
            f"<vcpupin vcpu='{v}' cpuset='{','.join(map(str, range(1000)))},{1400 + v}'/>".encode()
            for v in range(4096)
        )
        + b"</cputune>"
        + POOL_METADATA
        + b"</domain>",
    ],
    ids=[
        "entities",
        "predefined",
        "astral-attribute",
        "astral-text",
        "elements",
        "utf-7",
        "over",
        "vcpupins",
    ],
)
def test_the_hook_peak_memory_stays_within_4x_the_input_cap(
    hook: Path, host: Host, xml: bytes
) -> None:
    status, peak_kib = peak_rss_kib(hook, host, xml)
    assert status in (0, 1)
    assert peak_kib * 1024 < 4 * MAX_XML_BYTES


def test_a_stdin_that_never_ends_is_refused_within_the_bound(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """libvirt closes stdin after the XML; a caller that does not must not hold the hook."""
    monkeypatch.setattr(hook_qemu, "STDIN_SECONDS", 1)
    reader, writer = os.pipe()
    os.write(writer, b"<domain>")
    saved = os.dup(0)
    os.dup2(reader, 0)
    try:
        started = time.monotonic()
        status = hook_qemu.main(run_args(Path("hook")))
        elapsed = time.monotonic() - started
    finally:
        os.dup2(saved, 0)
        for descriptor in (saved, reader, writer):
            os.close(descriptor)
    assert status == 1
    assert elapsed < 3
    assert (
        "cannot read the domain XML on stdin: it did not end within 1 s" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("xml", "op", "settings"),
    [
        (plain_xml(), "migrate", {}),  # not a pool VM
        (pool_xml(N1), "migrate", {}),  # allowed
        (pool_xml(A64FX), "prepare", {"start_policy": "warn"}),  # refused, but started
        (pool_xml(A64FX), "prepare", {"start_policy": "ignore"}),  # not judged
    ],
    ids=["non-pool", "allowed", "warn", "ignore"],
)
def test_a_decision_to_let_libvirt_go_on_leaves_no_alarm_armed(
    host: Host, monkeypatch: pytest.MonkeyPatch, xml: bytes, op: str, settings: dict[str, str]
) -> None:
    """An alarm still armed when the decision returns fires later under load: guard()'s
    handler of bugs would then refuse the VM it had allowed."""
    monkeypatch.setenv("HOME", str(host.home))
    host.configure(**settings)
    assert guard_module._guard("vm1", op, "incoming migration", xml) == 0
    assert signal.alarm(0) == 0  # nothing was pending
