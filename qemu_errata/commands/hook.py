"""``qemu-errata hook install|uninstall``: our script in libvirt's hook directory, or not.

The script runs this interpreter with ``-I`` (no environment, no user site)
and ``-S`` (no site-packages scan, which costs a quarter of Python's start-up:
libvirt runs hooks for every op of every VM); it adds this installation's
package directories to ``sys.path`` itself. Both commands are idempotent and
never touch a file of that name that we did not write.
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
from pathlib import Path

import libvirt_hooks
from qemu_errata.commands import Subcommands
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
    sub = commands.add_parser("hook", help="install or remove the libvirt hook script")
    sub.add_argument("action", choices=("install", "uninstall"))
    sub.add_argument(
        "--hooks-dir",
        type=Path,
        default=DEFAULT_HOOKS_DIR,
        metavar="DIR",
        help=f"libvirt's qemu hook directory (default {DEFAULT_HOOKS_DIR})",
    )
    sub.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    action = install if args.action == "install" else uninstall
    print(action(args.hooks_dir))
    return ExitStatus.OK


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
    """The hook script for the interpreter ``python`` and this installation."""
    if not os.path.isabs(python) or any(c.isspace() for c in python):
        raise InputError(f"{python!r}: a hook needs an absolute interpreter path without spaces")
    paths = sysconfig.get_paths()
    package_dirs = [
        paths["purelib"],
        paths["platlib"],
        str(Path(libvirt_hooks.__path__[0]).resolve().parent),
    ]
    return "\n".join(
        [
            f"#!{python} -IS",
            "# The qemu-errata libvirt hook: refuses incoming migrations, restores and starts",
            "# of pool VMs on hosts outside their pool. Runs without site (-S) to start fast.",
            MARKER,
            "import sys",
            "",
            f"sys.path += {list(dict.fromkeys(package_dirs))!r}",
            "from libvirt_hooks.qemu import main",
            "",
            "sys.exit(main(sys.argv))",
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
