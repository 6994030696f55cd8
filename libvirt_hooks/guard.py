"""The hook's decision for a VM whose domain XML names the pool namespace.

Every CPU the VM may run on must be one of its target implementations, its guests
must not skip here a mitigation this host's CPUs need (unless the pool model accepts
it by name: ``hazardcheck``), the host's timer frequency must be the pool's, and,
when the configuration names a cached host profile, the host must be able to
present the VM's register values.
Anything that stops the check (malformed XML or metadata, a bad or untrusted
configuration, unreadable sysfs, a timeout, a bug) refuses the VM: fail closed,
one bounded line on stderr (never stdout: libvirt reads a new domain XML there),
never a traceback. Every decision is logged with the configuration file it
used; failing to log is reported but never changes the decision.

The time bound covers everything, the log write included (``decisionlog``): a
decision reached late still gets LOG_SECONDS to be recorded. Kept light (``os``,
``_signal``, ``_socket``; see bench/hook_startup.py): the
CPU names for a refusal and the host-profile check load the core library only
when needed.
"""

from __future__ import annotations

import errno
import os
import sys
import time

from libvirt_hooks.config import (
    DEFAULT_TIMEOUT_SECONDS,
    SYSLOG,
    HookConfig,
    config_files,
    load_config,
    log_of_broken,
)
from libvirt_hooks.constants import MAX_XML_BYTES
from libvirt_hooks.decisionlog import (
    LOG_ERR,
    LOG_IDENT,
    LOG_INFO,
    LOG_WARNING,
    append_to_log,
    encoded,
    send_to_syslog,
    write_domain_log,
)
from libvirt_hooks.domain import Domain, Pool, read_domain
from libvirt_hooks.hostcpus import (
    HostImplementation,
    read_host_implementations,
)
from qemu_errata.core.cpulist import format_cpus, named_cpus
from qemu_errata.errors import ConfigError, DomainXmlError, InputError, SysfsError

TYPE_CHECKING = False  # typing itself costs start-up time on the hook's path
if TYPE_CHECKING:
    import signal
else:  # signal's enums import enum/functools/collections: ~3.5 ms per pool decision
    import _signal as signal

_NO_SYSLOG = (errno.ENOENT, errno.ECONNREFUSED)
LOG_SECONDS = 1  # what a decision reached at the deadline still gets to be recorded
MAX_LINE = 4000  # characters of a refusal or log line; the rest is counted, not shown
MAX_ERROR = 300  # characters of an internal error's text


class HookTimeoutError(Exception):
    """The hook's own time bound ran out."""


def guard(domain_name: str, op: str, what: str, xml: bytes | bytearray) -> int:
    """0 to let libvirt go on, 1 to refuse (after printing why on stderr).

    ``op`` is libvirt's op (``migrate``, ``restore``, ``prepare``) and ``what``
    its name in messages; ``xml`` is longer than MAX_XML_BYTES when it was too
    large to read whole.
    """
    _open_standard_descriptors()
    try:
        return _guard(domain_name, op, what, xml)
    except Exception as error:  # a bug, or the timeout firing between two steps: one line
        signal.alarm(0)
        say(
            f"qemu-errata: refused the {what} of VM {domain_name!r}: "
            f"internal error in the hook: {_internal(error)}"
        )
        return 1
    finally:
        signal.alarm(0)


def say(line: str) -> None:
    """``line`` (bounded) on stderr, if there is one: never on stdout, libvirt's XML channel."""
    stream = sys.stderr
    if stream is None:  # closed by the caller: print() would fall back to stdout
        return
    try:
        stream.write(bounded(line) + "\n")
        stream.flush()
    except (OSError, ValueError):  # a closed, broken or full stderr: the log has the decision
        sys.stderr = None  # nor may exit flush it again (status 120)


def bounded(text: str) -> str:
    """``text`` on one line, at most MAX_LINE characters, saying how much was left out."""
    line = " ".join(text.splitlines())
    if len(line) <= MAX_LINE:
        return line
    return f"{line[:MAX_LINE]}... ({len(line) - MAX_LINE} more characters left out)"


def _open_standard_descriptors() -> None:
    """/dev/null on any of fds 0-2 the caller closed, so no file the hook opens lands there."""
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != descriptor:
                os.dup2(opened, descriptor)
                os.close(opened)


def _guard(domain_name: str, op: str, what: str, xml: bytes | bytearray) -> int:
    _set_timeout(DEFAULT_TIMEOUT_SECONDS)
    log = DecisionLog(SYSLOG, "not read")
    config: HookConfig | None = None
    host = "not read"
    notes: list[str] = []
    try:
        loaded, log = _load_config()
        if isinstance(loaded, HookConfig):
            config = loaded
            _set_timeout(config.timeout_seconds)
        domain = _read_domain(xml)
        if domain.pool is None:  # the namespace is mentioned, but not as our metadata
            return _decided(0)
        if isinstance(loaded, ConfigError):
            raise loaded
        config = loaded
        if op == "prepare" and config.start_policy == "ignore":
            outcome = "allowed (start_policy ignore)"
            _say_unrecorded(domain_name, log.record(domain_name, op, host, outcome))
            return _decided(0)
        host, problems, notes = judge(domain, config)
    except HookTimeoutError:
        seconds = config.timeout_seconds if config else DEFAULT_TIMEOUT_SECONDS
        where = config.describe("timeout_seconds") if config else "timeout_seconds"
        problems = [f"the check did not finish within {seconds} s ({where})"]
    except InputError as error:
        problems = [_explain(error, config)]
    except Exception as error:  # fail closed on a bug too, with one line
        problems = [f"internal error in the hook: {_internal(error)}"]
    signal.alarm(signal.alarm(0) or LOG_SECONDS)  # the deadline covers the log write
    if not problems:
        _say_unrecorded(domain_name, log.record(domain_name, op, host, "allowed", notes))
        return _decided(0)
    if op == "prepare" and config is not None and config.start_policy != "enforce":
        _warn(domain_name, what, problems, config, log=log, host=host)  # never blocks a start
        return _decided(0)
    line = f"qemu-errata: refused the {what} of VM {domain_name!r}: {'; '.join(problems)}"
    if op == "prepare" and config is not None:
        line += f'; or set start_policy = "warn" in {config.editable} to start it anyway'
    unrecorded = log.record(domain_name, op, host, "refused", [line])
    signal.alarm(0)
    say(line if unrecorded is None else f"{line}; {unrecorded}")
    return 1


def _decided(status: int) -> int:
    """``status``, the alarm cancelled first: a SIGALRM after the decision would reach
    guard()'s handler of bugs and turn an allowed VM into a refused one."""
    signal.alarm(0)
    return status


def admission(
    xml: bytes | bytearray, config: HookConfig
) -> tuple[str, list[str], list[str]] | None:
    """The hook's decision on a VM with domain XML ``xml`` arriving here, not logged (``hook
    check``'s dry run): as judge, with a check that could not be made as its one problem;
    None when the XML carries no pool model (the hook lets such a VM in unexamined)."""
    try:
        domain = _read_domain(xml)
        if domain.pool is None:
            return None
        return judge(domain, config)
    except InputError as error:
        return "not read", [_explain(error, config)], []


def judge(domain: Domain, config: HookConfig) -> tuple[str, list[str], list[str]]:
    """The decision for a pool VM arriving on this host: this host's CPUs (for the log),
    every reason to refuse it (none: allowed) and notes; the hook and ``hook check``'s
    admission dry run decide with it. InputError when the check cannot be made."""
    assert domain.pool is not None
    implementations = read_host_implementations(config.sysfs_root, domain.cpus)
    problems, notes = _problems(domain, domain.pool, implementations, config)
    return "; ".join(str(i) for i in implementations), problems, notes


def _warn(
    domain_name: str,
    what: str,
    problems: list[str],
    config: HookConfig,
    *,
    log: DecisionLog,
    host: str,
) -> None:
    """start_policy warn (or ignore, when the check itself failed): the start goes on; the
    refusal it would have been is said in the decision log and in the VM's libvirt log
    (libvirt shows a hook's stderr only when the hook fails, so that log is where the
    person who started the VM finds it)."""
    line = (
        f"qemu-errata: would refuse the {what} of VM {domain_name!r} "
        f"({config.describe('start_policy')}, so it starts anyway): {'; '.join(problems)}"
    )
    details = [line]
    try:
        unwritten = write_domain_log(domain_name, line)
    except HookTimeoutError:  # the alarm is spent: the decision log gets its own bound
        unwritten = "not written to the VM's libvirt log: the write did not finish in time"
        signal.alarm(LOG_SECONDS)
    if unwritten is not None:
        details.append(unwritten)
    outcome = f"allowed (start_policy {config.start_policy})"
    _say_unrecorded(domain_name, log.record(domain_name, "prepare", host, outcome, details))


def _say_unrecorded(domain_name: str, unrecorded: str | None) -> None:
    """An allowed decision stands unrecorded: say so (libvirt shows stderr only on errors)."""
    if unrecorded is not None:
        signal.alarm(0)
        say(f"qemu-errata: allowed VM {domain_name!r}, but {unrecorded}")


class DecisionLog:
    """Where decisions go: syslog, or a file; ``source`` says which configuration was used.

    A decision that cannot be recorded is reported on stderr (in the refusal's one
    line) and to syslog, and stands: a full disk, a removed log directory or a stuck
    syslog never refuses a VM.
    """

    def __init__(self, target: str, source: str) -> None:
        self.path = None if target == SYSLOG else target
        self.source = source

    def record(
        self, domain: str, op: str, host: str, outcome: str, details: list[str] | None = None
    ) -> str | None:
        """Record one decision; None, or why it could not be (for the caller to say)."""
        line = bounded(
            f"config={self.source} domain={domain!r} op={op} host=[{host}] outcome={outcome}"
            + "".join(f" | {detail}" for detail in details or [])
        )
        try:
            if self.path is None:
                send_to_syslog(LOG_INFO if outcome.startswith("allowed") else LOG_WARNING, line)
            else:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                append_to_log(self.path, encoded(f"{stamp} {LOG_IDENT}[{os.getpid()}]: {line}\n"))
        except (OSError, HookTimeoutError) as error:
            if self.path is None and getattr(error, "errno", None) in _NO_SYSLOG:
                return None  # no syslog daemon on this host: dropped, as libc's syslog() does
            why = (
                "the write did not finish in time"
                if isinstance(error, (HookTimeoutError, TimeoutError))
                else (getattr(error, "strerror", None) or str(error))
            )
            if self.path is not None:
                self._to_syslog_instead(line, why)
            return f"the decision was not recorded in {self.path or 'syslog'} ({why})"
        return None

    def _to_syslog_instead(self, line: str, why: str) -> None:
        try:
            send_to_syslog(LOG_ERR, f"could not record a decision in {self.path}: {why}")
            send_to_syslog(LOG_WARNING, line)
        except (OSError, HookTimeoutError):
            pass  # stderr has it


def _load_config() -> tuple[HookConfig | ConfigError, DecisionLog]:
    """The configuration (or the error to report if the VM is a pool VM) and its log.

    Read before the domain XML, so that even a malformed XML's refusal is logged
    where the configuration says; a configuration refused for another key still
    names the log its ``log`` key gives, if that key is itself valid.
    """
    home = os.environ.get("HOME")
    try:
        config = load_config(home)
    except ConfigError as error:
        used, _ = config_files(home)
        return error, DecisionLog(log_of_broken(home), f"{used} (refused: not usable)")
    return config, DecisionLog(config.log, config.source)


def _read_domain(xml: bytes | bytearray) -> Domain:
    if len(xml) > MAX_XML_BYTES:
        raise DomainXmlError(f"the domain XML is larger than {MAX_XML_BYTES} bytes")
    return read_domain(xml)


def _problems(
    domain: Domain,
    pool: Pool,
    host: list[HostImplementation],
    config: HookConfig,
) -> tuple[list[str], list[str]]:
    """Every reason this host cannot run the VM (none: it can), and notes for the log."""
    problems: list[str] = []
    notes: list[str] = []
    outside = [i for i in host if not any(t.admits(i.midr, i.revidr) for t in pool.targets)]
    if outside:
        problems.append(_not_in_list(outside, host, pool, domain.cpus))
    wanted, local = pool.timer_frequency_hz, config.timer_frequency_hz
    if wanted is not None and local is not None and wanted != local:
        problems.append(
            f"this host's timer runs at {local} Hz ({config.describe('timer_frequency_hz')}), "
            f"the VM's pool at {wanted} Hz, and a guest's timer frequency cannot change: "
            f"run it on a host at {wanted} Hz"
        )
    if not outside and pool.could_lose_mitigations():
        from libvirt_hooks.hazardcheck import hazard_problems  # noqa: PLC0415 (errata tables)

        _use_table_copies()
        problems += hazard_problems(pool, host)
    if config.host_profile is not None:
        from libvirt_hooks.profilecheck import profile_problems  # noqa: PLC0415 (loads the catalogue)

        _use_table_copies()

        problems += profile_problems(pool, config.host_profile, host, notes)
    elif wanted is not None and local is None:
        notes.append(
            f"the pool's timer frequency is {wanted} Hz and this host's is unknown "
            f"(set timer_frequency_hz or host_profile in {config.editable})"
        )
    return problems, notes


def _not_in_list(
    outside: list[HostImplementation],
    host: list[HostImplementation],
    pool: Pool,
    cpuset: int | None,
) -> str:
    from qemu_errata.core.midr import Midr  # noqa: PLC0415 (CPU names cost a JSON read: refusals only)

    _use_table_copies()

    which = "" if cpuset is None else ", which the VM may run on,"
    found = ", ".join(
        f"CPU{'s' if len(i.cpus) > 1 else ''} {format_cpus(i.cpus)}{which} "
        f"{'are' if len(i.cpus) > 1 else 'is'} {Midr(i.midr).describe()} REVIDR {i.revidr:#x}"
        for i in outside
    )
    targets = ", ".join(
        Midr(t.midr).describe() + ("" if t.revidr is None else f" REVIDR {t.revidr:#x}")
        for t in pool.targets
    )
    inside = tuple(sorted(c for i in host if i not in outside for c in i.cpus))
    pin = f", pin its vCPUs to {named_cpus(inside)} (cpuset)" if inside else ""
    return (
        f"this host's {found}, not in the VM's target implementation list [{targets}]; "
        f"run it on a host whose CPUs are in that list{pin}; a pool that takes this host in "
        "needs a new pool model (`qemu-errata baseline` of the pool's host profiles and this "
        "host's, from `qemu-errata probe`)"
    )


def _use_table_copies() -> None:
    """The register table from its parsed copy (qemu_errata/table_copies.py), as the command
    line reads it: parsing it would cost a refusal several times its budget."""
    from qemu_errata import table_copies  # noqa: PLC0415 (only when the core is loaded)

    table_copies.install()


def _explain(error: InputError, config: HookConfig | None) -> str:
    """An error that stopped the check, with what fixes it."""
    if isinstance(error, DomainXmlError):
        return f"{error} (see the VM's definition: `virsh dumpxml`)"
    if isinstance(error, ConfigError):
        return f"bad hook configuration: {error} (`qemu-errata hook check` shows it all)"
    if isinstance(error, SysfsError) and config is not None:
        return f"{error} ({config.describe('sysfs_root')})"
    return str(error)


def _internal(error: Exception) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MAX_ERROR else f"{text[:MAX_ERROR]}..."


def _set_timeout(seconds: int) -> None:
    """Raise HookTimeoutError after ``seconds`` (0: never): libvirt waits for hooks forever."""
    signal.signal(signal.SIGALRM, _timed_out)
    signal.alarm(seconds)


def _timed_out(_signal: int, _frame: object) -> None:
    raise HookTimeoutError("the hook's time bound ran out")
