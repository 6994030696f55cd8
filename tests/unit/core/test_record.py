"""Records behave as ``dataclass(frozen=True)`` does, for what the package uses of it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest

from qemu_errata.core.record import FrozenRecordError, field, fields, record, replace


@record
class Point:
    x: int
    y: int = 0
    tags: Mapping[str, int] = field(default_factory=dict)
    note: str = field(default="", compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class DataPoint:
    x: int
    y: int = 0
    tags: Mapping[str, int] = dataclasses.field(default_factory=dict)
    note: str = dataclasses.field(default="", compare=False, repr=False)


@record
class Named:
    name: str
    note: str = field(default="", compare=False)


@record(order=True)
class Version:
    major: int
    minor: int


def test_fields_take_positions_keywords_and_defaults_in_annotation_order() -> None:
    assert fields(Point) == ("x", "y", "tags", "note")
    assert vars(Point(1)) == vars(DataPoint(1)) == {"x": 1, "y": 0, "tags": {}, "note": ""}
    assert vars(Point(1, 2, note="n")) == {"x": 1, "y": 2, "tags": {}, "note": "n"}
    assert vars(Point(y=2, x=1)) == vars(Point(1, 2))
    assert Point.y == 0
    assert Point.note == ""
    assert not hasattr(Point, "tags")


def test_a_default_factory_is_called_for_each_instance() -> None:
    assert Point(1).tags is not Point(1).tags


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, {}, "", 5), {}), ((1,), {"x": 1}), ((1,), {"z": 1}), ((), {"y": 1})],
)
def test_wrong_arguments_are_a_type_error_as_for_a_dataclass(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(TypeError):
        DataPoint(*args, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Point(*args, **kwargs)  # type: ignore[arg-type]


def test_equality_and_hash_skip_the_fields_compare_false_leaves_out() -> None:
    assert Point(1, note="a") == Point(1, note="b")
    assert hash(Version(1, 2)) == hash(Version(1, 2))
    assert hash(Named("a", "x")) == hash(Named("a", "y"))
    assert Point(1) != Point(2)
    assert Point(1, tags={"a": 1}) != Point(1)
    other: object = DataPoint(1)
    assert Point(1) != other
    assert Point(1).__eq__(other) is NotImplemented
    with pytest.raises(TypeError, match="unhashable"):
        hash(Point(1))


def test_the_repr_is_the_dataclass_one() -> None:
    assert repr(Point(1, 2, {"a": 1}, "n")) == "Point(x=1, y=2, tags={'a': 1})"
    assert repr(DataPoint(1, 2, {"a": 1}, "n")).replace("DataPoint", "Point") == repr(
        Point(1, 2, {"a": 1}, "n")
    )


def test_fields_cannot_be_assigned_or_deleted() -> None:
    point = Point(1)
    with pytest.raises(FrozenRecordError):
        point.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del point.x
    with pytest.raises(AttributeError):
        point.z = 2  # type: ignore[attr-defined]
    assert point.x == 1


def test_replace_copies_with_changes_and_refuses_a_field_the_record_lacks() -> None:
    point = Point(1, 2, {"a": 1}, "n")
    moved = replace(point, y=3)
    assert vars(moved) == {"x": 1, "y": 3, "tags": {"a": 1}, "note": "n"}
    assert vars(point) == {"x": 1, "y": 2, "tags": {"a": 1}, "note": "n"}
    with pytest.raises(TypeError, match="z"):
        replace(point, z=1)


def test_order_compares_the_fields_as_a_tuple() -> None:
    assert Version(1, 2) < Version(1, 10) <= Version(1, 10) < Version(2, 0)
    assert Version(2, 0) > Version(1, 9) >= Version(1, 9)
    assert sorted([Version(2, 0), Version(1, 5), Version(1, 2)]) == [
        Version(1, 2),
        Version(1, 5),
        Version(2, 0),
    ]
    with pytest.raises(TypeError):
        assert Version(1, 2) < (1, 3)  # type: ignore[operator]
