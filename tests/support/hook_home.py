"""One simulated host for the libvirt hook's tests: the HOME whose hook.toml the hook reads,
a sysfs CPU tree (written by each test) and the decision log the configuration names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class HookHome:
    """``home`` with ``.config/qemu-errata/hook.toml``, ``sys/`` and ``hook.log``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.sysfs = home / "sys"
        self.log = home / "hook.log"
        self.config = home / ".config" / "qemu-errata" / "hook.toml"

    def configure(self, **settings: Any) -> None:
        """hook.toml naming this sysfs tree and log, with ``settings`` (None: left out)."""
        values = {"sysfs_root": str(self.sysfs), "log": str(self.log), **settings}
        self.write("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items() if v is not None))

    def write(self, text: str) -> None:
        """hook.toml exactly as ``text`` (a broken one, too)."""
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(text)

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []
