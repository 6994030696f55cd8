"""The test bed's libvirt hooks: wrappers in qemu.d that run a hook for its users only.

libvirt runs every executable of qemu.d, so the daemons of every live test
bed run every test bed's wrappers, and a wrapper unlinked between libvirt's
readdir and its exec fails their hook call ("cannot execute binary"). So a
test bed holds a shared lock on HOOKS_LOCK while its daemons live; at
teardown it retires its wrappers (rewrites them, atomically, to exit 0), and
the retired wrappers are unlinked only by a test bed that then gets the lock
exclusively, that is when no other test bed is live.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

from qemu_errata.errors import TestBedError
from qemu_errata.files import write_atomically

HOOKS_DIR = Path("/etc/libvirt/hooks/qemu.d")
HOOKS_LOCK = Path("/run/lock/qemu-errata-testbed.hooks")
RETIRED_WRAPPER = (
    "#!/bin/sh\n# A closed qemu-errata test bed's hook (removed when none is live).\nexit 0\n"
)
HOOK_WRAPPER_PREFIX = "qemu-errata-testbed."
_TOML_KEY = re.compile(r"[A-Za-z0-9_-]+")

HookValue = str | int | bool


def hook_wrapper(users: str, script: Path) -> str:
    return (
        "#!/bin/sh\n"
        "# Installed by the qemu-errata test bed; retired at its teardown.\n"
        "# Runs the hook only for the daemons of the test bed's users.\n"
        f'case "$USER" in\n{users}) exec {shlex.quote(str(script))} "$@" ;;\nesac\nexit 0\n'
    )


def share_hooks_lock() -> int:
    """A descriptor holding HOOKS_LOCK shared (waits while a closing test bed unlinks)."""
    flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
    descriptor = os.open(HOOKS_LOCK, flags, 0o644)
    fcntl.flock(descriptor, fcntl.LOCK_SH)
    return descriptor


def retire(wrapper: Path) -> None:
    """Make a wrapper exit 0, in place: libvirt may be about to run it for another test bed."""
    if wrapper.exists():
        write_atomically(wrapper, RETIRED_WRAPPER.encode(), 0o755)


def is_retired(wrapper: Path) -> bool:
    try:
        return wrapper.read_text() == RETIRED_WRAPPER
    except (OSError, UnicodeDecodeError):
        return False


def hook_toml(values: Mapping[str, HookValue]) -> str:
    """A flat TOML table (JSON string escapes are valid TOML basic-string escapes)."""
    lines = []
    for key, value in values.items():
        if not _TOML_KEY.fullmatch(key):
            raise TestBedError(f"hook configuration key {key!r}: not a bare TOML key")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | str):
            text = json.dumps(value)
        else:
            raise TestBedError(f"hook configuration key {key!r}: not a string, integer or bool")
        lines.append(f"{key} = {text}\n")
    return "".join(lines)
