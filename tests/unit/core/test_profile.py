"""Host profiles: the JSON format, and one clear error per malformed input."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.hosts import NEOVERSE_N1_MIDR, NEOVERSE_N1_REGISTERS, profile_json

from qemu_errata.core.profile import profile_from_json
from qemu_errata.errors import InputError, ProfileError
from qemu_errata.files import read_profile, write_json


def valid() -> dict[str, Any]:
    return profile_json("n1", NEOVERSE_N1_MIDR, NEOVERSE_N1_REGISTERS, {"CTR_EL0": "0x0"})


def test_round_trip_keeps_every_value(tmp_path: Path) -> None:
    data = valid()
    data["firmware_registers"] = {"KVM_REG_ARM_PSCI_VERSION": "0x10001"}
    data["capabilities"] = {"writable_masks": True}
    profile = profile_from_json(data, "n1.json")
    write_json(tmp_path / "out.json", profile.to_json())
    again = read_profile(tmp_path / "out.json")
    assert again == profile
    assert again.id_registers["ID_AA64ISAR0_EL1"] == 0x100010211120
    assert again.implementations[0].midr == 0x414FD0C1
    assert again.writable_mask("CTR_EL0") == 0
    assert again.writable_mask("ID_AA64ISAR0_EL1") == 0  # missing from the masks: 0


def test_unknown_masks_mean_nothing_is_writable() -> None:
    data = valid()
    data["writable_masks"] = None
    profile = profile_from_json(data, "n1.json")
    assert profile.writable_masks is None
    assert profile.writable_mask("ID_AA64ISAR0_EL1") == 0


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        target: Any = data
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value

    return change


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("format", "qemu-errata/host-profile/9"), "p.json: format: expected"),
        (_set("host", ""), "p.json: host: missing or not a non-empty string"),
        (_set("implementations", []), "p.json: implementations: empty"),
        (
            _set("implementations/0/midr", 0x414FD0C1),
            "p.json: implementations[0].midr: 1095749825 is not a hex string",
        ),
        (_set("implementations/0/midr", KeyError), "p.json: implementations[0].midr: missing"),
        (_set("implementations/0/cpus", []), "p.json: implementations[0].cpus: missing or not"),
        (_set("id_registers", KeyError), "p.json: id_registers: missing"),
        (_set("id_registers/CTR_EL0", "0xzz"), "p.json: id_registers.CTR_EL0: '0xzz' is not a hex"),
        (_set("id_registers/CTR_EL0", "0x1" + "0" * 16), "p.json: id_registers.CTR_EL0: 0x1"),
        (_set("writable_masks", KeyError), "p.json: writable_masks: missing (write null"),
        (_set("writable_masks", []), "p.json: writable_masks: missing or not an object"),
        (
            _set("timer_frequency_hz", "fast"),
            "p.json: timer_frequency_hz: 'fast' is not a positive",
        ),
        (_set("capabilities", {"x": 1}), "p.json: capabilities: values must be true or false"),
    ],
)
def test_malformed_profile_names_file_and_key(
    change: Callable[[dict[str, Any]], None], message: str
) -> None:
    data = copy.deepcopy(valid())
    change(data)
    with pytest.raises(ProfileError) as error:
        profile_from_json(data, "p.json")
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_a_cpu_under_two_implementations_is_refused() -> None:
    data = valid()
    data["implementations"].append(
        {"midr": "0x410fd034", "revidr": "0x0", "aidr": "0x0", "cpus": [1, 2]}
    )
    with pytest.raises(ProfileError, match=r"implementations\[1\]\.cpus: a CPU is listed"):
        profile_from_json(data, "p.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON: Expecting property name enclosed in double quotes at line 1"),
        ("[]", "not a JSON object"),
        (b"\xff\xfe", "not UTF-8 text"),
    ],
)
def test_unreadable_files_are_named(tmp_path: Path, text: str | bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(InputError, match=f"^{path}: {message}"):
        read_profile(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.json: cannot read: No such file"):
        read_profile(tmp_path / "nope.json")


def test_write_is_atomic_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "model.json"
    target.write_text('{"old": true}')
    with pytest.raises(TypeError):
        write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json"]
