"""Validate documents against the JSON Schemas the package ships (data/schemas)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

_DIRECTORY = resources.files("qemu_errata").joinpath("data/schemas")


def _schemas() -> dict[str, dict[str, Any]]:
    return {
        entry.name.removesuffix(".schema.json"): json.loads(entry.read_text("utf-8"))
        for entry in _DIRECTORY.iterdir()
        if entry.name.endswith(".schema.json")
    }


SCHEMAS = _schemas()
_REGISTRY: Registry = Registry().with_resources(
    (schema["$id"], Resource.from_contents(schema)) for schema in SCHEMAS.values()
)


def validate(document: Any, kind: str) -> None:
    """Raise jsonschema.ValidationError unless ``document`` is a valid ``kind``."""
    Draft202012Validator(SCHEMAS[kind], registry=_REGISTRY).validate(document)
