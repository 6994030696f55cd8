"""The error tree drawn in errors.py is the tree of QemuErrataError's subclasses."""

from __future__ import annotations

import importlib
import pkgutil
import re

import libvirt_hooks
import qemu_errata
from qemu_errata import errors

# One class of the drawing: its tree branch, then its name.
_DRAWN = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w*Error)\b", re.MULTILINE)


def drawn_parents() -> dict[str, str | None]:
    """Each class the docstring draws, and the class it hangs from."""
    assert errors.__doc__ is not None
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for match in _DRAWN.finditer(errors.__doc__):
        depth = len(match["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match["name"]] = stack[-1][1] if stack else None
        stack.append((depth, match["name"]))
    return parents


def defined_parents() -> dict[str, str | None]:
    """Each subclass of QemuErrataError any of our modules defines, and its base."""
    for package in (qemu_errata, libvirt_hooks):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if module.name != "qemu_errata.__main__":
                importlib.import_module(module.name)
    parents: dict[str, str | None] = {errors.QemuErrataError.__name__: None}
    pending = [errors.QemuErrataError]
    while pending:
        base = pending.pop()
        for subclass in base.__subclasses__():
            if subclass.__name__.startswith("_"):
                continue  # private to its module, never raised out of it (see errors.py)
            parents[subclass.__name__] = base.__name__
            pending.append(subclass)
    return parents


def test_the_drawing_is_the_class_tree() -> None:
    assert drawn_parents() == defined_parents()
