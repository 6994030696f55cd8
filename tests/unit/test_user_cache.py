"""Files of the user's cache (qemu_errata/user_cache.py): whole or not at all."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from qemu_errata import user_cache


def test_an_interrupted_cache_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(document: Any, stream: Any) -> None:
        raise KeyboardInterrupt  # what Ctrl-C or SIGTERM (see commands/main.py) raises

    monkeypatch.setattr(json, "dump", interrupted)
    with pytest.raises(KeyboardInterrupt):
        user_cache.write_json(str(tmp_path), "copy.json", {})
    assert os.listdir(tmp_path) == []


def test_a_cache_file_is_written_whole_and_read_back(tmp_path: Path) -> None:
    assert user_cache.write_json(str(tmp_path), "copy.json", {"a": [1]})
    assert os.listdir(tmp_path) == ["copy.json"]
    assert user_cache.read_json(str(tmp_path), "copy.json") == {"a": [1]}
