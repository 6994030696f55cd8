"""Frozen records: what ``dataclass(frozen=True)`` gives a class, without its start-up cost.

Python 3.11's dataclasses compiles each class's methods with six ``exec`` calls (~0.4 ms a
class) and imports inspect, ast, dis and tokenize (~5 ms); ``check`` defines ~30 such classes
before it reads a file. A record is built from the class's own annotations instead, in order,
each a field (so no ``ClassVar`` and no record bases): ``__init__`` (positional or keyword,
defaults and ``field(default_factory=...)``), ``__eq__`` and ``__hash__`` over the compared
fields, ``__repr__``, ``order=True``'s comparisons, and assignment refused. ``replace`` and
``fields`` stand in for dataclasses' own. ``dataclass_transform`` tells mypy the constructor.
"""

from __future__ import annotations

from itertools import repeat
from operator import attrgetter, eq, ge, gt, le, lt

TYPE_CHECKING = False  # typing costs a short command its import
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, TypeVar, dataclass_transform, overload

    _T = TypeVar("_T")

    # What mypy checks a record's fields and constructor by (PEP 681).
    @overload
    def field(*, default: _T, compare: bool = True, repr: bool = True) -> _T: ...
    @overload
    def field(
        *, default_factory: Callable[[], _T], compare: bool = True, repr: bool = True
    ) -> _T: ...
    @overload
    def field(*, compare: bool = True, repr: bool = True) -> Any: ...
    def field(
        *,
        default: Any = ...,
        default_factory: Any = ...,
        compare: bool = True,
        repr: bool = True,
    ) -> Any:
        """A field's default (or a factory of each instance's), or that ``==`` or repr skips it."""

    @overload
    def record(cls: type[_T], /) -> type[_T]: ...
    @overload
    def record(*, order: bool = False) -> Callable[[type[_T]], type[_T]]: ...
    @dataclass_transform(frozen_default=True, field_specifiers=(field,))
    def record(cls: type[_T] | None = None, /, *, order: bool = False) -> Any:
        """The class as a frozen record; ``order=True`` adds ``<``, ``<=``, ``>``, ``>=``."""


_MISSING: Any = object()
_set_attribute = object.__setattr__


class FrozenRecordError(AttributeError):
    """A record's fields are set once, by its constructor."""


class _Field:
    """What ``field(...)`` said about one field, until the class is made a record."""

    __slots__ = ("compare", "default", "default_factory", "shown")

    def __init__(self, default: Any, default_factory: Any, compare: bool, shown: bool) -> None:
        self.default, self.default_factory = default, default_factory
        self.compare, self.shown = compare, shown


def _field(
    *,
    default: Any = _MISSING,
    default_factory: Any = _MISSING,
    compare: bool = True,
    repr: bool = True,
) -> _Field:
    return _Field(default, default_factory, compare, repr)


def _record(cls: type[_T] | None = None, /, *, order: bool = False) -> Any:
    if cls is None:
        return lambda c: _make_record(c, order)
    return _make_record(cls, order)


if not TYPE_CHECKING:
    field, record = _field, _record


def fields(cls: type[Any]) -> tuple[str, ...]:
    """A record class's field names, in order."""
    names: tuple[str, ...] = cls.__record_fields__
    return names


def replace(obj: _T, /, **changes: Any) -> _T:
    """A copy of the record ``obj`` with ``changes`` to its fields."""
    cls: type[Any] = type(obj)
    # Each field's change if there is one, else its value: popped, so what is left is unknown.
    values = tuple(map(changes.pop, cls.__record_fields__, cls.__record_values__(obj)))
    if changes:
        raise TypeError(f"{cls.__qualname__} has no fields {sorted(changes)}")
    copy: _T = cls(*values)
    return copy


def _make_record(cls: type[_T], order: bool) -> type[_T]:
    # The class's own annotations, not inspect's (whose import check would pay for).
    names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    compared, shown = [], []
    for name in names:
        spec = cls.__dict__.get(name, _MISSING)
        if not isinstance(spec, _Field):
            spec = _Field(spec, _MISSING, compare=True, shown=True)
        elif spec.default is _MISSING:
            delattr(cls, name)
        else:
            setattr(cls, name, spec.default)
        if spec.default_factory is not _MISSING:
            factories[name] = spec.default_factory
        elif spec.default is not _MISSING:
            defaults[name] = spec.default
        if spec.compare:
            compared.append(name)
        if spec.shown:
            shown.append(name)
    key = _tuple_of(compared)
    methods: dict[str, object] = {
        "__record_fields__": names,
        "__record_values__": _tuple_of(list(names)),
        "__init__": _init(cls.__qualname__, names, defaults, factories),
        "__repr__": _repr(shown),
        "__eq__": _compare(key, eq),
        "__hash__": lambda self: hash(key(self)),
        "__setattr__": _refuse,
        "__delattr__": _refuse,
    }
    if order:
        methods |= {
            "__lt__": _compare(key, lt),
            "__le__": _compare(key, le),
            "__gt__": _compare(key, gt),
            "__ge__": _compare(key, ge),
        }
    for name, method in methods.items():
        setattr(cls, name, method)
    return cls


def _init(
    qualname: str,
    names: tuple[str, ...],
    defaults: dict[str, Any],
    factories: dict[str, Callable[[], Any]],
) -> Callable[..., None]:
    known, count = frozenset(names), len(names)
    # For each number of positional arguments, the defaults of the fields after them, if
    # every one has a plain default: the common call, given the values in order.
    tails = [
        tuple(defaults[name] for name in names[given:])
        if defaults.keys() >= set(names[given:])
        else None
        for given in range(count + 1)
    ]

    def ordered(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterable[Any]:
        if args:
            if len(args) > count or not kwargs.keys().isdisjoint(names[: len(args)]):
                raise TypeError(f"{qualname}() got arguments {args!r} {kwargs!r}")
            kwargs.update(zip(names, args, strict=False))
        if len(kwargs) < count:
            kwargs = defaults | kwargs
            for name, factory in factories.items():
                if name not in kwargs:
                    kwargs[name] = factory()
        if len(kwargs) != count or not kwargs.keys() <= known:
            raise TypeError(f"{qualname}() takes {names}, not {sorted(kwargs)}")
        return map(kwargs.__getitem__, names)

    def init(self: object, *args: Any, **kwargs: Any) -> None:
        if kwargs or len(args) > count or (tail := tails[len(args)]) is None:
            values = ordered(args, kwargs)
        else:
            values = args + tail
        # One at a time, in order, as dataclasses does: every instance then shares its
        # class's attribute layout, and reading a field stays the interpreter's fast path
        # (``self.__dict__.update`` would give each its own dict). ``any`` only drives the
        # calls, in C: each returns None.
        any(map(_set_attribute, repeat(self, count), names, values))

    return init


def _tuple_of(names: list[str]) -> Callable[[object], tuple[Any, ...]]:
    """The named attributes' values as a tuple (attrgetter gives a bare value for one name)."""
    if len(names) == 1:
        get = attrgetter(names[0])
        return lambda obj: (get(obj),)
    if not names:
        return lambda obj: ()
    return attrgetter(*names)


def _compare(
    key: Callable[[object], tuple[Any, ...]], compare: Callable[[tuple[Any, ...], Any], Any]
) -> Callable[[object, object], Any]:
    def method(self: object, other: object) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return compare(key(self), key(other))

    return method


def _repr(names: list[str]) -> Callable[[object], str]:
    def represent(self: object) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__qualname__}({shown})"

    return represent


def _refuse(self: object, name: str, value: object = None) -> None:
    raise FrozenRecordError(f"cannot assign to field {name!r}")
