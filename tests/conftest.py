"""Fixtures shared by every test, and the markers each test directory implies.

Helpers are in support/ (imported as ``from support.x import ...``); no test
module imports another.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.checkout import (
    PACKAGES,
    cli_interpreter,
    differences,
    hook_interpreter,
    imported_by,
)

# A test's first directory under tests/ says what it needs: unit tests need nothing.
DIRECTORY_MARKERS = {"integration": pytest.mark.integration, "nested": pytest.mark.nested}
TESTS = Path(__file__).parent
NOT_ROOT = pytest.mark.skip(reason="needs root")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = DIRECTORY_MARKERS.get(item.path.relative_to(TESTS).parts[0])
        if marker is not None:
            item.add_marker(marker)
        if item.get_closest_marker("root") and os.geteuid() != 0:
            item.add_marker(NOT_ROOT)


@pytest.fixture(scope="session", autouse=True)
def code_under_test_is_this_checkout() -> None:
    """Refuse to test another copy: imports here, the CLI and the hook run the checkout's code.

    scripts/test installs the checkout first; pytest run another way may test a
    copy installed from elsewhere or before the last edit.
    """
    here = {package: Path(__import__(package).__path__[0]) for package in PACKAGES}
    for who, where in [
        ("this process", here),
        ("the qemu-errata command", imported_by(cli_interpreter())),
        ("the libvirt hook", imported_by(hook_interpreter())),
    ]:
        problems = [p for package, path in where.items() for p in differences(path, package)]
        if problems:
            pytest.fail(
                f"{who} runs a copy that is not this checkout ({'; '.join(problems[:3])}): "
                "run scripts/test, which installs the checkout first",
                pytrace=False,
            )


@pytest.fixture
def write_json(tmp_path: Path) -> Callable[[str, Any], Path]:
    def write(name: str, data: Any) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(data) if not isinstance(data, str) else data)
        return path

    return write
