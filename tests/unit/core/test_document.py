"""Strict decoding of our JSON documents, and the readers' refusals of unknown keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qemu_errata.core.document import JSON_MAX_DEPTH, parse_json
from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.pool import baseline, model_from_json
from qemu_errata.core.profile import profile_from_json
from qemu_errata.errors import InputError, ProfileError

PROFILE_OBJECT = load_embedded_profile("kvm-6.12-neoverse-n1")
PROFILE = PROFILE_OBJECT.to_json()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ('{"a": 1e999}', "a number past 1e+30"),
        ('{"a": ' + "9" * 5000 + "}", "a number past 1e+30"),
        ("[" * 100_000 + "]" * 100_000, f"nested deeper than {JSON_MAX_DEPTH} levels"),
        ("[" * 40 + "]" * 40, f"nested deeper than {JSON_MAX_DEPTH} levels"),
        ('{"host": "a\\ud800"}', "a string with a lone surrogate"),
        ('{"a\\udfff": 1}', "a string with a lone surrogate"),
        ('{"a": 1', "not valid JSON"),
    ],
)
def test_malformed_json_is_one_line_naming_the_input(text: str, problem: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_json(text, "in.json")
    message = str(refused.value)
    assert message.startswith("in.json: ")
    assert problem in message
    assert "\n" not in message
    assert len(message) < 300


def test_well_formed_json_decodes_as_json_does() -> None:
    text = json.dumps(PROFILE)
    assert parse_json(text, "p.json") == json.loads(text)


def _profile(**changes: Any) -> dict[str, Any]:
    return {**PROFILE, **changes}


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (_profile(hots="x"), "p.json: hots: unknown key"),
        (
            _profile(implementations=[{**PROFILE["implementations"][0], "mdir": "0x0"}]),
            "p.json: implementations[0].mdir: unknown key",
        ),
        (_profile(host="a\nb"), "p.json: host: missing or not a non-empty string of printable"),
        (
            _profile(implementations=[{**PROFILE["implementations"][0], "cpus": [10**30]}]),
            "not a non-empty list of CPU numbers 0-65535",
        ),
        (
            _profile(implementations=[{**PROFILE["implementations"][0], "cpus": [1, 1]}]),
            "a CPU is listed twice",
        ),
        (_profile(timer_frequency_hz=1 << 64), "is not a positive 64-bit integer or null"),
        (_profile(id_registers={"MIDR_EL1": "0x_1"}), "is not a hex string like '0x1f'"),
        (_profile(id_registers={"MIDR_EL1": "0x1 "}), "is not a hex string like '0x1f'"),
        (_profile(id_registers={"MIDR_EL1": "0x" + "f" * 5000}), "does not fit in 64 bits"),
    ],
)
def test_profile_readers_refuse_unknown_keys_and_out_of_range_values(
    document: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ProfileError) as refused:
        profile_from_json(document, "p.json")
    assert problem in str(refused.value)
    assert "\n" not in str(refused.value)


def test_messages_quoting_the_input_are_bounded() -> None:
    document = _profile()
    document["k" * 100_000] = 1
    with pytest.raises(ProfileError) as refused:
        profile_from_json(document, "p.json")
    assert len(str(refused.value)) < 500
    assert "more characters)" in str(refused.value)


def test_model_readers_refuse_unknown_keys() -> None:
    model = baseline([PROFILE_OBJECT, load_embedded_profile("kvm-6.12-cortex-a76")]).to_json()
    assert model_from_json(model, "m.json").to_json() == model  # round trip: every key known
    for document, where in [
        ({**model, "errata": []}, "m.json: errata: unknown key"),
        (
            {**model, "target_implementations": [{"midr": "0x1", "revidr_": None}]},
            "m.json: target_implementations[0].revidr_: unknown key",
        ),
    ]:
        with pytest.raises(ProfileError, match="unknown key") as refused:
            model_from_json(document, "m.json")
        assert str(refused.value).startswith(where)
