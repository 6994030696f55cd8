"""A real live migration of a running KVM guest between two nested arm64 hosts.

``qemu-errata nested-migrate MODEL --from CPU:KERNEL --to CPU:KERNEL``: a
fleet (:mod:`.fleet`) of the two hosts, each with Debian's QEMU 11.1.3; on
the source, the fleet guest (:mod:`.heartbeat`) started under KVM with
exactly the QEMU arguments ``render`` gives for the model and the source
host; then QEMU's own live migration to the destination, driven over QMP,
through the hosts' private link.

Libvirt is not in the nested hosts: its hook is run here exactly as libvirt
runs it, at the points libvirt runs it. The script ``hook install`` writes is
run with libvirt's argv (``<domain> <op> <subop> -``), the domain XML
``render --as domain-xml`` gives on stdin and libvirt's environment (only
``LC_ALL PATH HOME USER LOGNAME TMPDIR``): ``prepare begin``, ``start begin``
and ``started begin`` on the source before and after its start;
``migrate begin``, ``prepare begin`` and ``start begin`` on the destination
before its QEMU exists. A non-zero exit refuses, as libvirt would, with the
hook's stderr as the message; nothing of the guest's memory has moved then.

The migration stream goes through the link with QEMU's ``exec:``
transport, which has no return path: the source reports ``completed`` when
it has sent everything, whether or not the destination loaded it. As
libvirt does when the destination's Finish fails, a source whose
destination failed is resumed (``cont``), and the destination QEMU's error is
the message. Outcomes: ``migrated`` (the destination runs the guest and its
heartbeat goes on from where it stopped), ``refused`` (the hook or QEMU said
no, the guest still runs on the source), ``failed`` (anything else: the guest
is lost, never started, or stopped counting).
"""

from __future__ import annotations

import base64
import itertools
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qemu_errata import processes
from qemu_errata.core.embedded import embedded_profile_names
from qemu_errata.errors import InputError
from qemu_errata.nested.fleet import (
    GUEST_CONSOLE_PORT,
    GUEST_INITRD,
    GUEST_KERNEL,
    FleetError,
    FleetHost,
    HostSpec,
    Progress,
    fleet,
)
from qemu_errata.nested.heartbeat import BEAT_SECONDS, Beat, boot_facts, parse_beat

REPORT_FORMAT = "qemu-errata/nested-migrate/1"
DOMAIN = "heartbeat"
GUEST_MEMORY_MIB = 128
HOOK_DIRECTORY = "/etc/libvirt/hooks/qemu.d"
HOOK_SCRIPT = f"{HOOK_DIRECTORY}/qemu-errata"
# What libvirt passes a hook (src/util/vircommand.c virCommandAddEnvPassCommon).
HOOK_ENVIRONMENT = {
    "LC_ALL": "C",
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "USER": "root",
    "LOGNAME": "root",
    "TMPDIR": "/tmp",
}
SOURCE_HOOK_OPS = (("prepare", "begin"), ("start", "begin"))
DESTINATION_HOOK_OPS = (("migrate", "begin"), ("prepare", "begin"), ("start", "begin"))
# Reads the incoming stream off the link and exits once QEMU has read it all.
LINK_READER = "/usr/bin/python3.11 -m qemu_errata.nested.link_reader"
GUEST_COMMAND_LINE = "console=ttyAMA0 panic=-1 quiet"
GUEST_START_SECONDS = 300.0
MIGRATION_SECONDS = 300.0
BEATS_AFTER = 3
# QEMU 11.1 names the registers it failed to set on lines before its error.
_SAID_LINES = 4
QEMU_ERRATA = (sys.executable, "-m", "qemu_errata")
_DOMAIN_XML = f"""<domain type='kvm'>
  <name>{DOMAIN}</name>
  <memory unit='MiB'>{GUEST_MEMORY_MIB}</memory>
  <vcpu>1</vcpu>
  <os><type arch='aarch64' machine='virt'>hvm</type></os>
</domain>
"""


@dataclass
class Report:
    """What happened (the JSON report's fields, :meth:`to_json`)."""

    model: str
    source: HostSpec
    destination: HostSpec
    hook: bool
    outcome: str = "failed"
    refused_by: str | None = None
    phase: str | None = None
    message: str | None = None
    guest_running_after: bool = False
    qemu_arguments: list[str] = field(default_factory=list)
    hosts: dict[str, dict[str, str]] = field(default_factory=dict)
    guest_boot: dict[str, str | None] = field(default_factory=dict)
    guest_before: dict[str, Any] | None = None
    guest_after: dict[str, Any] | None = None
    downtime_ms: int | None = None
    total_ms: int | None = None
    transferred_bytes: int | None = None
    heartbeat_gap_ms: int | None = None
    hook_runs: list[dict[str, Any]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "model": self.model,
            "from": {
                "cpu": self.source.cpu,
                "kernel": self.source.kernel,
                **self.hosts.get("from", {}),
            },
            "to": {
                "cpu": self.destination.cpu,
                "kernel": self.destination.kernel,
                **self.hosts.get("to", {}),
            },
            "hook": self.hook,
            "outcome": self.outcome,
            "refused_by": self.refused_by,
            "phase": self.phase,
            "message": self.message,
            "guest_running_after": self.guest_running_after,
            "guest_boot": self.guest_boot,
            "guest_before": self.guest_before,
            "guest_after": self.guest_after,
            "downtime_ms": self.downtime_ms,
            "total_ms": self.total_ms,
            "transferred_bytes": self.transferred_bytes,
            "heartbeat_gap_ms": self.heartbeat_gap_ms,
            "qemu_arguments": self.qemu_arguments,
            "hook_runs": self.hook_runs,
            "seconds": self.seconds,
        }


class _RefusedError(Exception):
    """The hook or QEMU said no (or something failed): ends the run with this outcome."""

    def __init__(self, outcome: str, refused_by: str | None, phase: str, message: str) -> None:
        super().__init__(message)
        self.outcome, self.refused_by = outcome, refused_by
        self.phase, self.message = phase, message


def render(
    model: Path, source: HostSpec, program: Sequence[str] = QEMU_ERRATA, vmm: str = "qemu-kvm"
) -> tuple[list[str], bytes]:
    """What ``render`` gives for the model on the source host: QEMU arguments, domain XML.

    Rendered as ``qemu-errata render ... --host-profile kvm-SERIES-CPU`` when
    that profile is embedded (the nested host it was probed on), else for any
    host. ``program``: the qemu-errata command to run; ``vmm``: its ``--vmm``.
    """
    profile = f"kvm-{source.kernel}-{source.cpu}"
    host = ["--host-profile", profile] if profile in embedded_profile_names() else []
    command = [*program, "render", str(model), "--vmm", vmm]
    with processes.temporary_directory("qemu-errata-render-") as directory:
        domain = directory / "domain.xml"
        domain.write_text(_DOMAIN_XML)
        arguments = _render([*command, "--as", "args", *host])
        xml = _render([*command, "--as", "domain-xml", "--domain", str(domain), *host])
    return shlex.split(arguments.decode()), xml


def _render(command: list[str]) -> bytes:
    completed = processes.run(command, capture_output=True, check=False)
    if completed.returncode != 0:
        said = completed.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"render: {said[-1] if said else completed.returncode}")
    return bytes(completed.stdout)


def nested_migrate(
    model: Path,
    source: HostSpec,
    destination: HostSpec,
    *,
    hook: bool,
    progress: Progress,
) -> Report:
    """Boot both hosts, start the guest on the source, migrate it live (module docstring)."""
    started = time.monotonic()
    arguments, xml = render(model, source)
    with fleet([source, destination], progress) as (src, dst):
        booted = time.monotonic() - started
        if hook:
            install_hooks([src, dst])
        report = migrate(src, dst, str(model), arguments, xml, hook=hook, progress=progress)
        report.seconds["boot"] = round(booted, 1)
    report.seconds["total"] = round(time.monotonic() - started, 1)
    return report


def install_hooks(hosts: Sequence[FleetHost]) -> None:
    """``qemu-errata hook install`` in each host, into libvirt's hook directory."""
    for host in hosts:
        result = host.qemu_errata("hook", "install", "--hooks-dir", HOOK_DIRECTORY)
        if result.status != 0:
            raise FleetError(f"{host.name}: hook install: {_last(result.stderr)}")


def migrate(
    src: FleetHost,
    dst: FleetHost,
    model: str,
    arguments: list[str],
    xml: bytes,
    *,
    hook: bool,
    progress: Progress,
) -> Report:
    """One case on running hosts: start the guest on ``src``, migrate it to ``dst``.

    Both guest QEMUs are killed before this returns, so the hosts can take the next case.
    """
    started = time.monotonic()
    report = Report(model, src.spec, dst.spec, hook, qemu_arguments=arguments)
    report.hosts = {
        "from": {"host": src.name, "kernel_release": src.kernel_release},
        "to": {"host": dst.name, "kernel_release": dst.kernel_release},
    }
    case = _Case(next(_CASES))
    try:
        with _Watch([src, dst]) as watch:
            try:
                _run(case, report, src, dst, xml=xml, watch=watch, progress=progress)
            except _RefusedError as refusal:
                report.outcome, report.refused_by = refusal.outcome, refusal.refused_by
                report.phase, report.message = refusal.phase, refusal.message
                if refusal.phase == "migrate":
                    report.guest_running_after = _keeps_counting(watch, src, 0, progress)
                    if not report.guest_running_after:
                        report.outcome = "failed"
                    report.guest_after = _seen(watch, src, "from")
            report.guest_boot = boot_facts(watch.text(src))
    finally:
        case.stop(src, dst)
    report.seconds["case"] = round(time.monotonic() - started, 1)
    return report


_CASES = itertools.count()


@dataclass
class _Case:
    """One migration's files in the hosts, and its QEMUs by host index."""

    number: int
    pids: dict[int, int] = field(default_factory=dict)

    @property
    def qmp(self) -> str:
        return f"/run/heartbeat-{self.number}.qmp"

    @property
    def log(self) -> str:
        return f"/run/heartbeat-{self.number}-qemu.log"

    def start_qemu(self, host: FleetHost, arguments: Sequence[str], extra: Sequence[str]) -> None:
        """The guest's QEMU under KVM in ``host``, its console on the guest-console port."""
        command = [
            "/usr/bin/qemu-system-aarch64",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-machine",
            "virt,gic-version=3",
            "-accel",
            "kvm",
            *arguments,
            "-m",
            str(GUEST_MEMORY_MIB),
            "-kernel",
            GUEST_KERNEL,
            "-initrd",
            GUEST_INITRD,
            "-append",
            GUEST_COMMAND_LINE,
            "-serial",
            f"file:{host.ports[GUEST_CONSOLE_PORT]}",
            "-qmp",
            f"unix:{self.qmp},server=on,wait=off",
            *extra,
        ]
        self.pids[host.index] = host.spawn(command, self.log)

    def exited(self, host: FleetHost) -> bool:
        """Whether the guest's QEMU in ``host`` (the agent's child: a zombie once ended) ended."""
        answer = host.request("read", path=f"/proc/{self.pids[host.index]}/stat")
        return "error" in answer or _stat_state(answer["data"]) == "Z"

    def said(self, host: FleetHost) -> str:
        """What QEMU wrote last in ``host`` (its error and the lines naming what failed)."""
        lines = [
            line.strip() for line in host.read_file(self.log).decode(errors="replace").splitlines()
        ]
        said = [line for line in lines if line][-_SAID_LINES:]
        return " | ".join(said) or "no message"

    def stop(self, *hosts: FleetHost) -> None:
        """Kill the case's QEMUs and link readers (the next case starts clean)."""
        for host in hosts:
            if host.index in self.pids:
                host.shell(f"kill -9 {self.pids[host.index]}; pkill -f link_reader; true")


def _stat_state(data: str) -> str:
    """The state letter of a /proc/PID/stat (after the command name's closing parenthesis)."""
    text = base64.b64decode(data).decode(errors="replace")
    return text[text.rindex(")") + 2 :][:1]


def _hooks(
    report: Report, host: FleetHost, xml: bytes, ops: Sequence[tuple[str, str]], phase: str
) -> None:
    """Run the hook for each op as libvirt does; _Refused at the first non-zero exit."""
    for op, subop in ops:
        result = host.run([HOOK_SCRIPT, DOMAIN, op, subop, "-"], stdin=xml, env=HOOK_ENVIRONMENT)
        report.hook_runs.append(
            {
                "host": host.name,
                "argv": [DOMAIN, op, subop, "-"],
                "exit_status": result.status,
                "stderr": result.stderr.decode(errors="replace").strip(),
                "ms": round(result.seconds * 1000),
            }
        )
        if result.status != 0:
            raise _RefusedError("refused", "hook", phase, f"{host.name}: {_last(result.stderr)}")


def _run(
    case: _Case,
    report: Report,
    src: FleetHost,
    dst: FleetHost,
    *,
    xml: bytes,
    watch: _Watch,
    progress: Progress,
) -> None:
    if report.hook:
        _hooks(report, src, xml, SOURCE_HOOK_OPS, "start")
    started = time.monotonic()
    progress(f"guest: starting it on {src.name} under KVM: {' '.join(report.qemu_arguments)}")
    case.start_qemu(src, report.qemu_arguments, ())
    _first_beat(case, watch, src, started)
    report.seconds["guest_start"] = round(time.monotonic() - started, 1)
    progress(f"guest: counting on {src.name} after {report.seconds['guest_start']} s")
    if report.hook:
        _hooks(report, src, xml, (("started", "begin"),), "start")
        _hooks(report, dst, xml, DESTINATION_HOOK_OPS, "migrate")
    started = time.monotonic()
    incoming = f"exec:{LINK_READER} {dst.link_to(src)}"
    case.start_qemu(dst, report.qemu_arguments, ("-incoming", incoming))
    _wait_incoming(case, dst)
    progress(f"migration: {src.name} -> {dst.name} through the private link")
    answer = src.qmp(case.qmp, "migrate", {"uri": f"exec:/bin/busybox cat > {src.link_to(dst)}"})
    if "error" in answer:
        raise _RefusedError("refused", "qemu", "migrate", f"source QEMU: {answer['error']['desc']}")
    status = _wait_migration(case, src, dst, report)
    report.seconds["migration"] = round(time.monotonic() - started, 1)
    before = watch.last(src)
    report.guest_before = _seen(watch, src, "from")
    problem = _destination_problem(case, dst) if status == "completed" else status
    if problem is not None:
        src.qmp(case.qmp, "cont")
        raise _RefusedError("refused", "qemu", "migrate", problem)
    count = 0 if before is None else before[1].count
    report.guest_running_after = _keeps_counting(watch, dst, count + 1, progress)
    report.guest_after = _seen(watch, dst, "to")
    first = watch.first_after(dst, count)
    if before is not None and first is not None:
        report.heartbeat_gap_ms = round((first[0] - before[0]) * 1000)
    report.outcome = "migrated" if report.guest_running_after else "failed"
    if not report.guest_running_after:
        report.message = f"the guest's heartbeat did not go on on {dst.name}"


def _first_beat(case: _Case, watch: _Watch, host: FleetHost, started: float) -> None:
    while time.monotonic() - started < GUEST_START_SECONDS:
        if watch.last(host) is not None:
            return
        if case.exited(host):
            raise _RefusedError("refused", "qemu", "start", f"source QEMU: {case.said(host)}")
        time.sleep(1)
    raise _RefusedError(
        "failed", None, "start", f"no heartbeat on {host.name} in {GUEST_START_SECONDS:g} s"
    )


def _wait_incoming(case: _Case, host: FleetHost) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if case.exited(host):
            raise _RefusedError(
                "refused", "qemu", "migrate", f"destination QEMU: {case.said(host)}"
            )
        answer = host.request("qmp", socket=case.qmp, execute="query-status")
        if answer.get("return", {}).get("status") == "inmigrate":
            return
        time.sleep(0.5)
    raise _RefusedError(
        "failed", None, "migrate", f"{host.name}: QEMU did not wait for the incoming VM"
    )


def _wait_migration(case: _Case, src: FleetHost, dst: FleetHost, report: Report) -> str:
    """``completed``, or what went wrong (the source's error, or the destination QEMU's)."""
    deadline = time.monotonic() + MIGRATION_SECONDS
    while time.monotonic() < deadline:
        info = src.qmp(case.qmp, "query-migrate").get("return", {})
        status = str(info.get("status", "none"))
        if status in ("completed", "failed", "cancelled"):
            report.downtime_ms = info.get("downtime")
            report.total_ms = info.get("total-time")
            report.transferred_bytes = info.get("ram", {}).get("transferred")
            if status == "failed":
                return f"source QEMU: migration failed: {info.get('error-desc', '')}"
            return status
        if case.exited(dst):
            # Its reader gone, the source would wait on the link for ever.
            report.transferred_bytes = info.get("ram", {}).get("transferred")
            src.qmp(case.qmp, "migrate_cancel")
            return f"destination QEMU: {case.said(dst)}"
        time.sleep(0.2)
    src.qmp(case.qmp, "migrate_cancel")
    return f"source QEMU: migration not completed in {MIGRATION_SECONDS:g} s"


def _destination_problem(case: _Case, dst: FleetHost) -> str | None:
    """None once the destination runs the guest; else what its QEMU said."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if case.exited(dst):
            return f"destination QEMU: {case.said(dst)}"
        answer = dst.request("qmp", socket=case.qmp, execute="query-status")
        status = answer.get("return", {}).get("status")
        if status == "running":
            return None
        if status not in (None, "inmigrate", "paused"):
            return f"destination QEMU: status {status}: {case.said(dst)}"
        time.sleep(0.3)
    return "destination QEMU: did not run the guest within 120 s"


def _keeps_counting(watch: _Watch, host: FleetHost, after: int, progress: Progress) -> bool:
    """Whether ``host``'s guest prints BEATS_AFTER more beats in a row, from count ``after``.

    The guest's counter stops while it is paused, so it skips no count over a
    downtime; but the line being printed at the switch-over is torn between
    the two consoles, so the first whole line may be the one after it.
    ``after`` 0: any next beats (the guest stayed where it was).
    """
    deadline = time.monotonic() + 60 + BEATS_AFTER * BEAT_SECONDS * 20
    start = watch.last(host)
    base = max(after, 0 if start is None else start[1].count + 1)
    while time.monotonic() < deadline:
        counts = [beat.count for _, beat in watch.beats(host) if beat.count >= base]
        if len(counts) >= BEATS_AFTER:
            progress(f"guest: counting on {host.name}: {counts[0]}..{counts[-1]}")
            in_a_row = counts == list(range(counts[0], counts[0] + len(counts)))
            return in_a_row and (after == 0 or counts[0] - base <= 1)
        time.sleep(0.3)
    return False


def _seen(watch: _Watch, host: FleetHost, where: str) -> dict[str, Any] | None:
    seen = watch.last(host)
    if seen is None:
        return None
    return {"on": where, "host": host.name, "beat": seen[1].count, "registers": seen[1].registers}


def _last(data: bytes) -> str:
    lines = [line.strip() for line in data.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


class _Watch:
    """Reads the hosts' guest consoles (outer files) and timestamps each heartbeat."""

    def __init__(self, hosts: Sequence[FleetHost]) -> None:
        self._hosts = list(hosts)
        self._beats: dict[int, list[tuple[float, Beat]]] = {host.index: [] for host in hosts}
        self._offsets = {host.index: _size(host.guest_console) for host in hosts}
        self._text = {host.index: b"" for host in hosts}
        self._partial = {host.index: b"" for host in hosts}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            for host in self._hosts:
                self._read(host)

    def _read(self, host: FleetHost) -> None:
        try:
            with host.guest_console.open("rb") as stream:
                stream.seek(self._offsets[host.index])
                data = stream.read()
        except FileNotFoundError:
            return
        now = time.monotonic()
        self._offsets[host.index] += len(data)
        self._text[host.index] += data
        lines = (self._partial[host.index] + data).split(b"\n")
        self._partial[host.index] = lines.pop()
        for line in lines:
            beat = parse_beat(line.decode(errors="replace"))
            if beat is not None:
                with self._lock:
                    self._beats[host.index].append((now, beat))

    def text(self, host: FleetHost) -> str:
        """What ``host``'s guest console got since the watch began."""
        self._read(host)
        return self._text[host.index].decode(errors="replace")

    def beats(self, host: FleetHost) -> list[tuple[float, Beat]]:
        with self._lock:
            return list(self._beats[host.index])

    def last(self, host: FleetHost) -> tuple[float, Beat] | None:
        beats = self.beats(host)
        return beats[-1] if beats else None

    def first_after(self, host: FleetHost, count: int) -> tuple[float, Beat] | None:
        return next(((t, b) for t, b in self.beats(host) if b.count > count), None)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
