"""The strict table reader: each kind of error is one line naming the file, the row and the key."""

from __future__ import annotations

import pytest

from qemu_errata.core import tables
from qemu_errata.core.catalogue import parse_catalogue
from qemu_errata.errors import CatalogueError

RANGE = tables.Row(
    {
        "implementer": tables.Value(int, bits=8),
        "part": tables.Value(int, bits=12),
        "from": tables.Value(int),
        "to": tables.Value(int),
        "seen_midr_only": tables.Value(bool),
    },
    required=["implementer"],
    ranges=[("from", "to", lambda value: int(str(value)))],
)
ROW = tables.Row(
    {
        "id": tables.Value(str),
        "applies": tables.Value(str, words=["guest", "host"]),
        "affects": tables.Value(list, row=RANGE),
        "bits": tables.Value(list, length=2, items=tables.Value(int, bits=6)),
        "names": tables.Value(dict, key_check=tables.hex_key(lambda: 8), items=tables.Value(str)),
    },
    required=["id"],
    name="id",
    unique=["id"],
)
FILE = tables.Row({"row": tables.Value(list, row=ROW)})


def refusal(*rows: dict[str, object]) -> str:
    with pytest.raises(CatalogueError) as refused:
        tables.check({"row": list(rows)}, FILE, "t.toml")
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_a_well_formed_document_passes() -> None:
    tables.check(
        {
            "row": [
                {"id": "a", "applies": "guest", "affects": [{"implementer": 0x41, "part": 0xD0C}]},
                {"id": "b", "bits": [3, 0], "names": {"0x41": "Arm"}},
            ]
        },
        FILE,
        "t.toml",
    )


def test_an_unknown_key_is_named_with_its_row() -> None:
    assert refusal({"id": "a", "aplies": "guest"}).startswith(
        "t.toml: row[0] a, key 'aplies': not a key of this table (known: affects, applies,"
    )


def test_a_missing_key() -> None:
    assert refusal({"applies": "guest"}) == "t.toml: row[0], key 'id': missing"


def test_the_string_false_is_not_a_boolean() -> None:
    row: dict[str, object] = {
        "id": "a",
        "affects": [{"implementer": 0x41, "seen_midr_only": "false"}],
    }
    assert refusal(row) == (
        "t.toml: row[0] a, affects[0], key 'seen_midr_only': 'false' is not true or false"
    )


def test_a_boolean_is_not_an_integer() -> None:
    assert refusal({"id": "a", "affects": [{"implementer": True}]}) == (
        "t.toml: row[0] a, affects[0], key 'implementer': True is not an integer"
    )


def test_a_13_bit_part_number_does_not_fit_the_12_bit_midr_field() -> None:
    assert refusal({"id": "a", "affects": [{"implementer": 0x41, "part": 0x1D0C}]}) == (
        "t.toml: row[0] a, affects[0], key 'part': 0x1d0c does not fit in 12 bits"
    )


def test_a_backward_range() -> None:
    assert refusal({"id": "a", "affects": [{"implementer": 0x41, "from": 3, "to": 1}]}) == (
        "t.toml: row[0] a, affects[0], key 'from': 3 is after 'to' 1"
    )


def test_a_duplicate_names_both_rows() -> None:
    assert refusal({"id": "a"}, {"id": "a"}) == (
        "t.toml: row[1] a, key 'id': 'a' again (first in t.toml: row[0] a)"
    )


def test_a_word_outside_the_vocabulary() -> None:
    assert refusal({"id": "a", "applies": "sometimes"}) == (
        "t.toml: row[0] a, key 'applies': 'sometimes' is not one of guest, host"
    )


def test_list_lengths_and_item_widths() -> None:
    assert refusal({"id": "a", "bits": [3]}) == "t.toml: row[0] a, key 'bits': 1 items, not 2"
    assert refusal({"id": "a", "bits": [64, 0]}) == (
        "t.toml: row[0] a, key 'bits[0]': 64 does not fit in 6 bits"
    )


def test_hex_keys_of_a_width() -> None:
    assert refusal({"id": "a", "names": {"0x141": "x"}}) == (
        "t.toml: row[0] a, key 'names': '0x141' is not a hex number of 8 bits"
    )
    assert refusal({"id": "a", "names": {"0x41": 1}}) == (
        "t.toml: row[0] a, key 'names.0x41': 1 is not a string"
    )


def test_a_malformed_register_encoding_is_a_table_error_not_an_internal_one() -> None:
    text = (
        'format = "qemu-errata/register-catalogue/2"\n[[register]]\nname = "X"\n'
        'kind = "feature"\nencoding = [3, 0, 0]\nres0 = [[63, 0]]\n'
    )
    with pytest.raises(CatalogueError, match=r"^r\.toml: register\[0\] X, key 'encoding': 3 items"):
        parse_catalogue(text, "r.toml")
