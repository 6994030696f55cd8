"""`hook check` and what the hook says about itself: the installed script, a log that takes
lines, where each setting came from (one answer for the hook and `hook check`), the
admission dry run, the warn policy's wording, and a broken configuration's refusal logged
where that configuration says.

(The warning in the VM's own libvirt log is tested on real libvirt daemons:
tests/integration/test_hook_libvirt.py.)
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from lxml import etree
from support.hook_home import HookHome

from libvirt_hooks import decisionlog
from libvirt_hooks.config import KEYS, HookConfig, load_config
from qemu_errata.commands import main as cli
from qemu_errata.commands.hook import MARKER, SCRIPT_NAME
from qemu_errata.core.implementations import TargetImplementation, TargetImplementations
from qemu_errata.core.pool import PoolModel
from qemu_errata.files import write_json
from qemu_errata.testbed.sysfs_tree import write_cpu_identity
from qemu_errata.vmm.pool_element import pool_element

N1 = 0x414FD0C1  # Arm Neoverse-N1 r4p1
A64FX = 0x461F0010  # Fujitsu A64FX r1p0


class Host(HookHome):
    """A 4-CPU Neoverse-N1 host, configured, with a hooks directory."""

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        self.hooks_dir = home / "qemu.d"
        for cpu in range(4):
            write_cpu_identity(self.sysfs, cpu, N1)
        self.configure()

    def check(self, *extra: str | Path) -> int:
        arguments = ["hook", "check", "--home", str(self.home), "--hooks-dir", str(self.hooks_dir)]
        return cli.main([*arguments, *map(str, extra)])

    def run_hook(self, xml: bytes, op: str = "migrate") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.hooks_dir / SCRIPT_NAME), "vm1", op, "begin", "-"],
            input=xml.decode(),
            capture_output=True,
            text=True,
            env={"HOME": str(self.home), "PATH": os.environ["PATH"], "LC_ALL": "C"},
            timeout=60,
            check=False,
        )


@pytest.fixture
def host(tmp_path: Path) -> Host:
    tmp_path.chmod(0o755)
    host = Host(tmp_path)
    assert cli.main(["hook", "install", "--hooks-dir", str(host.hooks_dir)]) == 0
    return host


def model(midr: int) -> PoolModel:
    targets = TargetImplementations([TargetImplementation(midr, None, None)])
    return PoolModel(id_registers={}, target_implementations=targets)


def pool_xml(midr: int) -> bytes:
    domain = etree.Element("domain", type="kvm")
    etree.SubElement(domain, "name").text = "vm1"
    etree.SubElement(domain, "metadata").append(pool_element(model(midr)))
    return bytes(etree.tostring(domain))


def output_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


# --- the installed script -----------------------------------------------------------------


def test_hook_check_says_the_script_is_installed_and_current(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    assert host.check() == 0
    lines = output_lines(capsys)
    assert f"hook script: {host.hooks_dir / SCRIPT_NAME} (installed and current)" in lines
    assert lines[-1] == "hook check passed: the hook is installed, current and configured."


def test_hook_check_names_one_cpu_in_the_singular(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    write_cpu_identity(host.sysfs, 4, A64FX)
    assert host.check() == 0
    lines = output_lines(capsys)
    assert f"this host: CPUs 0-3 MIDR {N1:#x} REVIDR 0x0" in lines
    assert f"this host: CPU 4 MIDR {A64FX:#x} REVIDR 0x0" in lines


def test_hook_check_fails_when_the_script_is_missing_or_stale(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    script = host.hooks_dir / SCRIPT_NAME
    script.write_text(f"#!/bin/sh\n{MARKER}\nexec /usr/bin/python3.9 -c old\n")
    assert host.check() == 2
    lines = output_lines(capsys)
    assert any(line.startswith(f"problem: hook script {script}: not current") for line in lines)
    assert lines[-1] == "hook check failed: 1 problem (above)."
    script.unlink()
    assert host.check() == 2
    assert f"problem: hook script {script}: not installed (`qemu-errata hook install`" in (
        capsys.readouterr().out
    )


# --- the log ------------------------------------------------------------------------------


def test_hook_check_fails_when_syslog_takes_no_lines(
    host: Host, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no syslog daemon (no /dev/log) the hook drops every decision, as libc's syslog()
    does: `hook check` must say so instead of passing."""
    monkeypatch.setattr(decisionlog, "SYSLOG_SOCKET", str(host.home / "no-such-log-socket"))
    host.configure(log="syslog")
    assert host.check() == 2
    out = capsys.readouterr().out
    assert "takes no lines (No such file or directory), so every decision would be lost" in out

    reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader.bind(str(host.home / "log.sock"))
    monkeypatch.setattr(decisionlog, "SYSLOG_SOCKET", str(host.home / "log.sock"))
    try:
        assert host.check() == 0
        assert b"qemu-errata hook check" in reader.recv(4096)
    finally:
        reader.close()


def test_hook_check_never_creates_or_changes_the_log(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log made by `hook check` would belong to whoever ran it, not to the user the hook
    runs as: a missing log stays missing (its directory is asked instead), and an existing
    one is opened for appending but not written."""
    assert not host.log.exists()
    assert host.check() == 0
    lines = output_lines(capsys)
    assert not host.log.exists()
    uid = os.geteuid()
    assert f"log: {host.log} (missing: the hook creates it on its first line (uid {uid} may))" in (
        lines
    )
    host.log.write_bytes(b"earlier line\n")
    os.utime(host.log, (0, 0))
    assert host.check() == 0
    assert f"log: {host.log} (exists; opened for appending, nothing written)" in output_lines(
        capsys
    )
    assert host.log.read_bytes() == b"earlier line\n"
    assert host.log.stat().st_mtime == 0


def test_hook_check_fails_when_the_logs_directory_is_missing(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    log = host.home / "no-such-dir" / "hook.log"
    host.configure(log=str(log))
    assert host.check() == 2
    lines = output_lines(capsys)
    assert (
        f"problem: log {log}: takes no lines: missing, and so is its directory {log.parent}"
        in lines
    )
    assert not log.parent.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may create files in any directory")
def test_hook_check_fails_when_this_user_cannot_create_the_log(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    shut = host.home / "shut"
    shut.mkdir(mode=0o555)
    host.configure(log=str(shut / "hook.log"))
    assert host.check() == 2
    assert (
        f"takes no lines: missing, and uid {os.geteuid()} cannot create files in {shut}"
        in capsys.readouterr().out
    )


def test_a_broken_configuration_is_refused_and_logged_where_it_says(host: Host) -> None:
    host.write(f'log = "{host.log}"\nstart_polcy = "warn"\n')
    result = host.run_hook(pool_xml(N1))
    assert result.returncode == 1
    assert "bad hook configuration" in result.stderr
    [logged] = host.log.read_text().splitlines()
    assert f"config={host.config} (refused: not usable)" in logged
    assert "outcome=refused | qemu-errata: refused the incoming migration" in logged
    assert "unknown key 'start_polcy'" in logged


# --- where a setting comes from -------------------------------------------------------------


def test_a_setting_the_file_does_not_set_is_never_said_to_come_from_it(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    host.write(f'log = "{host.log}"\nstart_policy = "enforce"\n')  # no sysfs_root: /sys
    config = load_config(str(host.home))
    assert host.check() == 2  # this machine's /sys has no arm64 CPU registers
    lines = output_lines(capsys)
    for key in KEYS:
        origin = config.origin(key)
        assert any(
            line.startswith(f"  {key} = ") and line.endswith(f"({origin})") for line in lines
        )
        assert (f" in {host.config}" in config.describe(key)) == (origin == "set")
    assert config.describe("sysfs_root") == (
        f"sysfs_root is the default '/sys': {host.config} does not set it"
    )
    result = host.run_hook(pool_xml(N1))
    assert result.returncode == 1
    assert f"sysfs_root is the default '/sys': {host.config} does not set it" in result.stderr
    assert f"'/sys' in {host.config}" not in result.stderr


def test_without_a_file_every_setting_is_a_default() -> None:
    config = HookConfig()
    assert {config.origin(key) for key in KEYS} == {"default"}
    assert "no hook configuration file" in config.describe("timeout_seconds")


# --- the admission dry run ------------------------------------------------------------------


def test_hook_check_model_is_the_hooks_decision_without_logging(
    host: Host, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inside, outside = tmp_path / "n1.json", tmp_path / "a64fx.json"
    write_json(inside, model(N1).to_json())
    write_json(outside, model(A64FX).to_json())
    assert host.check("--model", inside) == 0
    lines = output_lines(capsys)
    assert "admission: VM 'n1.json' (an incoming migration, restore or start)" in lines
    assert lines[-1] == (
        "hook check passed: the hook is installed, current and configured, "
        "and it lets VM 'n1.json' in."
    )
    assert host.check("--model", outside) == 1
    last = output_lines(capsys)[-1]
    assert last.startswith("The hook would refuse VM 'a64fx.json' here: this host's CPUs 0-3 are")
    assert "not in the VM's target implementation list" in last
    assert not host.log.exists()  # a dry run records no decision


@pytest.mark.parametrize(
    ("policy", "start"), [("warn", "with a warning"), ("ignore", "unexamined")]
)
def test_hook_check_model_says_a_start_goes_on_when_the_policy_is_not_enforce(
    host: Host, tmp_path: Path, capsys: pytest.CaptureFixture[str], policy: str, start: str
) -> None:
    # The hook refuses only incoming migrations and restores then: a start (libvirt's
    # prepare op) goes on, so the dry run must not tell the operator it would be refused.
    outside = tmp_path / "a64fx.json"
    write_json(outside, model(A64FX).to_json())
    host.configure(start_policy=policy)
    assert host.check("--model", outside) == 1
    last = output_lines(capsys)[-1]
    assert last.startswith(
        "The hook would refuse an incoming migration or restore of VM 'a64fx.json' here "
        f"(a start goes on {start}: start_policy = '{policy}' in {host.config}): "
        "this host's CPUs 0-3 are"
    )


def test_hook_check_model_with_a_problem_exits_2(
    host: Host, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "n1.json"
    write_json(path, model(N1).to_json())
    host.configure(timeout_seconds=0)
    assert host.check("--model", path) == 2
    assert output_lines(capsys)[-1] == "hook check failed: 1 problem (above)."
    assert host.check("--model", path, "--domain", "vm1") == 2  # --model or a domain, not both


# --- warn -----------------------------------------------------------------------------------


def test_warn_says_would_refuse_and_names_where_the_policy_is_set(host: Host) -> None:
    host.configure(start_policy="warn")
    result = host.run_hook(pool_xml(A64FX), "prepare")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    [logged] = host.log.read_text().splitlines()
    assert "outcome=allowed (start_policy warn) | qemu-errata: would refuse the start of VM" in (
        logged
    )
    assert f"(start_policy = 'warn' in {host.config}, so it starts anyway)" in logged
    assert "refused the start" not in logged
    # Run by pytest, not by a libvirt daemon: no VM log is written, and the log says so.
    assert "not written to the VM's libvirt log: the hook was not run by a libvirt daemon" in (
        logged
    )
