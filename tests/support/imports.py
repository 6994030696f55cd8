"""Code run where the nested host's Python stands: without lxml, libvirt or qemu.qmp."""

from __future__ import annotations

import subprocess
import sys

_BLOCKER = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('lxml', 'libvirt', 'libvirt_qemu', 'qemu'):\n"
    "            raise ModuleNotFoundError(name)\n"
    "sys.meta_path.insert(0, Block())\n"
)


def run_without_extras(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter to which those packages do not exist."""
    return subprocess.run(
        [sys.executable, "-c", _BLOCKER + code], capture_output=True, text=True, check=False
    )
