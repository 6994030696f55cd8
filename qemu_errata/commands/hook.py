"""``qemu-errata hook install|uninstall|check``: our script in libvirt's hook directory, or not.

``check`` says whether our script is in libvirt's hook directory as this
installation writes it, loads the hook's configuration exactly as the hook does
(same HOME precedence, same ownership rules, same limits), checks that its log
takes lines (without creating or changing a log file: one made here would belong to
whoever runs the check, not to the hook's user), reads this host's CPUs and the
cached host profile, and prints the effective settings and where each comes from
(HookConfig.origin, as the hook's own messages say it). With ``--model`` or
``--connect``/``--domain`` it then runs the hook's decision on that VM
(guard.admission), logging nothing: exit 1 when the hook would refuse it, 2 on any
problem of the installation or configuration.

The script runs this interpreter with ``-I`` (no environment, no user site)
and ``-S`` (no site-packages scan, which costs a quarter of Python's start-up:
libvirt runs hooks for every op of every VM); it adds this installation's
package directories to ``sys.path`` itself. Both commands are idempotent and
never touch a file of that name that we did not write.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
from pathlib import Path

import libvirt_hooks
from libvirt_hooks.config import KEYS, SYSLOG, SYSTEM_CONFIG, USER_CONFIG, HookConfig, load_config
from libvirt_hooks.constants import GUARDED
from libvirt_hooks.decisionlog import LOG_INFO, SYSLOG_SOCKET, log_takes_lines, send_to_syslog
from libvirt_hooks.guard import admission
from libvirt_hooks.hostcpus import read_host_implementations
from libvirt_hooks.profilecheck import describes, read_host_profile
from qemu_errata.commands import Subcommands, add_command
from qemu_errata.core.words import plural
from qemu_errata.errors import ExitStatus, InputError
from qemu_errata.files import read_bytes, write_atomically

DEFAULT_HOOKS_DIR = Path("/etc/libvirt/hooks/qemu.d")
SCRIPT_NAME = "qemu-errata"
MAX_SCRIPT_BYTES = 64 << 10  # ours is a few hundred bytes
MARKER = "# Installed by `qemu-errata hook install`; `qemu-errata hook uninstall` removes it."
RESTART = (
    "libvirt daemons (libvirtd, virtqemud) find hook scripts when they start: restart the "
    "running ones"
)


def register(commands: Subcommands) -> None:
    """Register ``hook install|uninstall|check`` on the ``qemu-errata`` subcommands."""
    sub = add_command(commands, "hook")
    sub.add_argument(
        "action",
        choices=("install", "uninstall", "check"),
        help="install or uninstall our hook script, or check it and its configuration",
    )
    sub.add_argument(
        "--hooks-dir",
        type=Path,
        default=DEFAULT_HOOKS_DIR,
        metavar="DIR",
        help=f"libvirt's qemu hook directory (default {DEFAULT_HOOKS_DIR})",
    )
    sub.add_argument(
        "--home",
        metavar="DIR",
        default=os.environ.get("HOME"),
        help="check: the HOME the hook runs with (libvirt's system daemon: /root; default $HOME)",
    )
    sub.add_argument(
        "--model",
        type=Path,
        metavar="MODEL",
        help="check: would the hook let a VM of this pool model in here? (a dry run)",
    )
    sub.add_argument("--connect", metavar="URI", help="check: with --domain, the libvirt URI")
    sub.add_argument(
        "--domain",
        metavar="NAME",
        help="check: would the hook let this libvirt domain (its migratable XML) in here?",
    )
    sub.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    if args.action != "check":
        if args.model or args.connect or args.domain:
            raise InputError(f"hook {args.action}: --model, --connect and --domain are for check")
        action = install if args.action == "install" else uninstall
        print(action(args.hooks_dir))
        return ExitStatus.OK
    candidate = _candidate(args)
    lines, problems = check(args.home, args.hooks_dir)
    refusal = None
    if candidate is not None and not problems:
        name, xml = candidate
        more, refusal = dry_run(load_config(args.home), name, xml)
        lines += more
    print("\n".join(lines + [f"problem: {problem}" for problem in problems]))
    if problems:
        print(f"hook check failed: {plural(len(problems), 'problem')} (above).")
        return ExitStatus.BAD_INPUT
    if refusal is not None:
        print(refusal)
        return ExitStatus.NO
    admits = "" if candidate is None else f", and it lets VM {candidate[0]!r} in"
    print(f"hook check passed: the hook is installed, current and configured{admits}.")
    return ExitStatus.OK


def _candidate(args: argparse.Namespace) -> tuple[str, bytes] | None:
    """The VM of the admission dry run: its name and domain XML (None: no dry run)."""
    if args.model is not None:
        if args.connect or args.domain:
            raise InputError("hook check: give either --model or --connect and --domain")
        return args.model.name, _model_xml(args.model)
    if args.connect is None and args.domain is None:
        return None
    if args.connect is None or args.domain is None:
        raise InputError("hook check: --connect and --domain go together")
    return args.domain, _domain_xml(args.connect, args.domain)


def _model_xml(path: Path) -> bytes:
    """A domain XML carrying the pool model in ``path`` as `apply` writes its metadata."""
    # Loaded here: lxml is for the dry run only, never for install or the plain check.
    from lxml import etree  # noqa: PLC0415

    from qemu_errata.files import read_model  # noqa: PLC0415
    from qemu_errata.vmm.pool_element import pool_element  # noqa: PLC0415

    domain = etree.Element("domain", type="kvm")
    etree.SubElement(domain, "name").text = path.name
    etree.SubElement(domain, "metadata").append(pool_element(read_model(path)))
    return bytes(etree.tostring(domain))


def _domain_xml(uri: str, name: str) -> bytes:
    """The domain's XML as libvirt sends it to a migration's destination."""
    import libvirt  # noqa: PLC0415 - only the dry run of a domain talks to libvirt

    from qemu_errata.vmm.libvirt_domain import libvirt_domain  # noqa: PLC0415

    with libvirt_domain(uri, name) as domain:
        try:
            text: str = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
        except libvirt.libvirtError as error:
            raise InputError(f"{uri}: domain {name}: {error.get_error_message()}") from None
    return text.encode("utf-8")


def dry_run(config: HookConfig, name: str, xml: bytes) -> tuple[list[str], str | None]:
    """What the hook would decide for VM ``name`` arriving here: lines, and the refusal
    (None: it would let the VM in)."""
    decision = admission(xml, config)
    if decision is None:
        return [
            f"admission: VM {name!r} carries no pool model: the hook lets it in unexamined"
        ], None
    _, problems, notes = decision
    lines = [f"admission: VM {name!r} (an incoming migration, restore or start)"]
    lines += [f"  note: {note}" for note in notes]
    if not problems:
        return [*lines, "  allowed"], None
    return lines, f"The hook would refuse {_refused_ops(config, name)}: {'; '.join(problems)}"


def _refused_ops(config: HookConfig, name: str) -> str:
    """What the hook refuses of VM ``name``: under start_policy warn or ignore, a start (the
    prepare op) goes on, so only incoming migrations and restores are refused."""
    if config.start_policy == "enforce":
        return f"VM {name!r} here"
    start = "with a warning" if config.start_policy == "warn" else "unexamined"
    return (
        f"an incoming migration or restore of VM {name!r} here "
        f"(a start goes on {start}: {config.describe('start_policy')})"
    )


def check(home: str | None, hooks_dir: Path = DEFAULT_HOOKS_DIR) -> tuple[list[str], list[str]]:
    """What the hook run with ``HOME=home`` would use, for people; and every problem found."""
    lines: list[str] = []
    problems: list[str] = []
    try:
        lines += _check_script(hooks_dir)
    except InputError as error:
        problems.append(str(error))
    user = os.path.join(home, USER_CONFIG) if home else f"$HOME/{USER_CONFIG} (no HOME)"
    lines.append(f"precedence: {user}, else {SYSTEM_CONFIG}, else the defaults (never merged)")
    try:
        config = load_config(home)
    except InputError as error:
        return lines, [*problems, str(error)]
    lines.append(f"configuration: {config.source}")
    for key in KEYS:
        value = getattr(config, key)
        lines.append(
            f"  {key} = {'(none)' if value is None else repr(value)}  ({config.origin(key)})"
        )
    for step in (_check_log, _check_host):
        try:
            lines += step(config)
        except InputError as error:
            problems.append(str(error))
    return lines, problems


def _check_script(hooks_dir: Path) -> list[str]:
    """Whether libvirt finds our script there, as this installation writes it."""
    path = hooks_dir / SCRIPT_NAME
    current = _read_ours(path)
    then = "then restart the libvirt daemons"
    if current is None:
        raise InputError(f"hook script {path}: not installed (`qemu-errata hook install`, {then})")
    if current != hook_script(sys.executable):
        raise InputError(
            f"hook script {path}: not current (another version or installation wrote it; "
            f"`qemu-errata hook install` again, {then})"
        )
    if not os.access(path, os.X_OK):
        raise InputError(f"hook script {path}: not executable, so libvirt skips it")
    return [f"hook script: {path} (installed and current)"]


def _check_log(config: HookConfig) -> list[str]:
    if config.log == SYSLOG:
        try:
            send_to_syslog(LOG_INFO, "qemu-errata hook check: the hook's decisions come here")
        except OSError as error:
            raise InputError(
                f"log syslog: {SYSLOG_SOCKET} takes no lines ({error.strerror or error}), so "
                f"every decision would be lost: run a syslog daemon, or set log to a file in "
                f"{config.editable}"
            ) from None
        return [f"log: syslog ({SYSLOG_SOCKET} took a line)"]
    try:
        found = log_takes_lines(config.log)
    except OSError as error:
        raise InputError(f"log {config.log}: takes no lines: {error.strerror or error}") from None
    return [f"log: {config.log} ({found})"]


def _check_host(config: HookConfig) -> list[str]:
    host = read_host_implementations(config.sysfs_root, None)
    lines = [f"this host: {implementation}" for implementation in host]
    if config.host_profile is not None:
        profile = read_host_profile(config.host_profile, "probe this host again", details=True)
        stale = [str(i) for i in host if not describes(profile, i)]
        if stale:
            raise InputError(
                f"host_profile {config.host_profile} does not describe this host's "
                f"{'; '.join(stale)}: probe this host again"
            )
        lines.append(f"host_profile: {config.host_profile} describes this host's CPUs")
    return lines


def install(hooks_dir: Path) -> str:
    """Write (or update) our script in ``hooks_dir``; what was done, for people."""
    path = hooks_dir / SCRIPT_NAME
    script = hook_script(sys.executable)
    current = _read_ours(path)
    if current == script:
        return f"{path}: already installed, unchanged"
    try:
        hooks_dir.mkdir(parents=True, exist_ok=True)
        # Atomic: libvirt never sees a half-written (or non-executable) hook.
        write_atomically(path, script.encode("utf-8"), 0o755)
    except OSError as error:
        raise InputError(f"{path}: cannot write: {error.strerror}") from None
    done = "updated" if current else "installed"
    return f"{path}: {done}; {RESTART} so that they run it"


def uninstall(hooks_dir: Path) -> str:
    """Remove our script from ``hooks_dir``, if it is there; what was done, for people."""
    path = hooks_dir / SCRIPT_NAME
    if _read_ours(path) is None:
        return f"{path}: not installed, nothing to remove"
    try:
        path.unlink()
    except OSError as error:
        raise InputError(f"{path}: cannot remove: {error.strerror}") from None
    return f"{path}: removed; {RESTART} so that they forget it"


def hook_script(python: str) -> str:
    """The hook script for the interpreter ``python`` and this installation.

    A shell script: libvirt runs every hook for every lifecycle op of every VM,
    and the ops the hook does not guard end in the shell (a millisecond)
    instead of a Python start-up (tens of milliseconds). The guarded ones run
    the Python hook without site (-S), which starts faster.
    """
    if not os.path.isabs(python) or any(c.isspace() or c in "'\"\\$`" for c in python):
        raise InputError(
            f"{python!r}: a hook needs an absolute interpreter path without spaces or quotes"
        )
    paths = sysconfig.get_paths()
    package_dirs = [
        paths["purelib"],
        paths["platlib"],
        str(Path(libvirt_hooks.__path__[0]).resolve().parent),
    ]
    code = (
        f"import sys; sys.path += {json.dumps(list(dict.fromkeys(package_dirs)))}; "
        "from libvirt_hooks.qemu import main; sys.exit(main(sys.argv[1:]))"
    )
    guarded = "|".join(f'"{op} {subop}"' for op, subop in GUARDED)
    return "\n".join(
        [
            "#!/bin/sh",
            "# The qemu-errata libvirt hook: refuses incoming migrations, restores and starts",
            "# of pool VMs on hosts outside their pool.",
            MARKER,
            "# Ops it does not guard end here, without reading the domain XML on stdin.",
            f'case "$2 $3" in {guarded}) ;; *) exit 0 ;; esac',
            f'exec {python} -IS -c \'{code}\' "$0" "$@"',
            "",
        ]
    )


def _read_ours(path: Path) -> str | None:
    """Our script's text at ``path``; None if there is none; InputError if the file is not ours."""
    if not os.path.lexists(path):
        return None
    try:
        text = read_bytes(path, MAX_SCRIPT_BYTES).decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: cannot read: {error}") from None
    if MARKER not in text:
        raise InputError(f"{path}: exists and was not installed by qemu-errata; move it away first")
    return text
