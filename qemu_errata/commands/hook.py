"""``qemu-errata hook install|uninstall|check``: our script in libvirt's hook directory, or not.

``check`` loads the hook's configuration exactly as the hook does (same HOME
precedence, same ownership rules, same limits), reads this host's CPUs and the
cached host profile, and prints the effective settings and where each comes from.

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
from libvirt_hooks.guard import append_to_log
from libvirt_hooks.hostcpus import read_host_implementations
from libvirt_hooks.profilecheck import describes, read_host_profile
from qemu_errata.commands import Subcommands, add_command
from qemu_errata.errors import ExitStatus, InputError
from qemu_errata.files import write_atomically

DEFAULT_HOOKS_DIR = Path("/etc/libvirt/hooks/qemu.d")
SCRIPT_NAME = "qemu-errata"
MARKER = "# Installed by `qemu-errata hook install`; `qemu-errata hook uninstall` removes it."
RESTART = (
    "libvirt daemons (libvirtd, virtqemud) find hook scripts when they start: restart the "
    "running ones"
)


def register(commands: Subcommands) -> None:
    """Register ``hook install|uninstall`` on the ``qemu-errata`` subcommands."""
    sub = add_command(commands, "hook")
    sub.add_argument("action", choices=("install", "uninstall", "check"))
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
    sub.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    if args.action == "check":
        lines, problems = check(args.home)
        print("\n".join(lines + [f"problem: {problem}" for problem in problems]))
        return ExitStatus.BAD_INPUT if problems else ExitStatus.OK
    action = install if args.action == "install" else uninstall
    print(action(args.hooks_dir))
    return ExitStatus.OK


def check(home: str | None) -> tuple[list[str], list[str]]:
    """What the hook run with ``HOME=home`` would use, for people; and every problem found."""
    user = os.path.join(home, USER_CONFIG) if home else f"$HOME/{USER_CONFIG} (no HOME)"
    lines = [f"precedence: {user}, else {SYSTEM_CONFIG}, else the defaults (never merged)"]
    try:
        config = load_config(home)
    except InputError as error:
        return lines, [str(error)]
    lines.append(f"configuration: {config.source}")
    for key in KEYS:
        value = getattr(config, key)
        origin = "set" if key in config.keys else "default"
        lines.append(f"  {key} = {'(none)' if value is None else repr(value)}  ({origin})")
    problems: list[str] = []
    for step in (_check_log, _check_host):
        try:
            lines += step(config)
        except InputError as error:
            problems.append(str(error))
    return lines, problems


def _check_log(config: HookConfig) -> list[str]:
    if config.log == SYSLOG:
        return ["log: syslog"]
    try:
        append_to_log(config.log, b"")
    except OSError as error:
        raise InputError(f"log {config.log}: cannot open for appending: {error}") from None
    return [f"log: {config.log} (opened for appending)"]


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
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read: {error}") from None
    if MARKER not in text:
        raise InputError(f"{path}: exists and was not installed by qemu-errata; move it away first")
    return text
