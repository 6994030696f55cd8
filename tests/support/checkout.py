"""Whether the code under test is this checkout: in-process imports, the CLI and the hook.

scripts/test installs the checkout it runs from; tests run from tests/ so that
``import qemu_errata`` is that installed copy, as a user gets it. A copy
installed from another checkout, or before the last edit, would test other
code; the session fixture in conftest.py refuses to run against it.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from support.cli import QEMU_ERRATA

CHECKOUT = Path(__file__).resolve().parents[2]
PACKAGES = ("qemu_errata", "libvirt_hooks", "xml_templates")
# Where each package of ours is imported from, printed one per line.
_WHERE = "import importlib; [print(importlib.import_module(p).__path__[0]) for p in {packages}]"
# The hook script's Python command (``qemu-errata hook install``): interpreter and code.
_HOOK_COMMAND = re.compile(r"exec (\S+) -IS -c '([^']*)'")
_HOOK_MAIN = "from libvirt_hooks.qemu import main; sys.exit(main(sys.argv[1:]))"


def differences(installed: Path, package: str) -> list[str]:
    """How the copy of ``package`` at ``installed`` differs from the checkout's (none: same)."""
    source = CHECKOUT / package
    if installed.resolve() == source:
        return []
    problems = []
    for path in sorted(source.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        copy = installed / path.relative_to(source)
        if copy.is_file():
            if copy.read_bytes() != path.read_bytes():
                problems.append(f"{package}/{path.relative_to(source)} differs")
        elif path.suffix == ".py":  # data files not in package_data are not installed
            problems.append(f"{package}/{path.relative_to(source)} is not installed")
    for copy in sorted(installed.rglob("*.py")):
        if not (source / copy.relative_to(installed)).is_file():
            problems.append(f"{package}/{copy.relative_to(installed)} is not in the checkout")
    return problems


def imported_by(command: list[str]) -> dict[str, Path]:
    """Where ``command`` (an interpreter and its options) imports each package of ours from."""
    code = _WHERE.format(packages=list(PACKAGES))
    done = subprocess.run([*command, code], capture_output=True, text=True, check=True, timeout=60)
    return dict(zip(PACKAGES, map(Path, done.stdout.split()), strict=True))


def cli_interpreter() -> list[str]:
    """The interpreter the ``qemu-errata`` console script runs (its #! line), isolated."""
    first = Path(QEMU_ERRATA).read_text().splitlines()[0]
    return [first.removeprefix("#!").strip(), "-I", "-c"]


def hook_interpreter() -> list[str]:
    """The interpreter and path set-up of the hook script ``qemu-errata hook install`` writes."""
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run(
            [QEMU_ERRATA, "hook", "install", "--hooks-dir", directory],
            capture_output=True,
            check=True,
            timeout=60,
        )
        (script,) = Path(directory).iterdir()
        match = _HOOK_COMMAND.search(script.read_text())
    assert match is not None, f"{script.name}: no Python command"
    python, code = match.groups()
    return [python, "-IS", "-c", code.replace(_HOOK_MAIN, "exec(sys.argv[1])")]
