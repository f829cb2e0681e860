"""Task registry: name -> task class, construction from user parameters with validation."""

from __future__ import annotations

import dataclasses
import types
import typing

from training.tasks.base import Task
from workbench.errors import UserError

_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator adding a task under its ``name``."""
    assert cls.name and cls.name not in _REGISTRY, cls.name
    _REGISTRY[cls.name] = cls
    return cls


def task_names() -> list[str]:
    return sorted(_REGISTRY)


def get_task_class(name: str) -> type[Task]:
    if name not in _REGISTRY:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}")
    return _REGISTRY[name]


def make_task(name: str, **params) -> Task:
    """Build a task from user parameters; unknown keys and wrong types raise ``UserError``."""
    cls = get_task_class(name)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    clean = {}
    for key, value in params.items():
        if key not in fields:
            raise UserError(f"task {name!r} has no parameter {key!r}; "
                             f"parameters: {', '.join(fields)}")
        clean[key] = coerce(value, hints[key], f"{name}.{key}")
    return cls(**clean)


def coerce(value, annotation, label: str):
    """Convert a user value (possibly a string from ``--set``) to ``annotation`` or raise."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or value == "none"):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, label)
            except ValueError as exc:
                errors.append(str(exc))
        raise UserError(errors[0] if errors else f"{label}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise UserError(f"{label} must be one of {list(args)}, got {value!r}")
        return value
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v != ""]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{label} must be a list, got {value!r}")
        inner = args[0] if args else str
        return tuple(coerce(v, inner, label) for v in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise UserError(f"{label} must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise UserError(f"{label} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise UserError(f"{label} must be an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, bool):
            raise UserError(f"{label} must be a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise UserError(f"{label} must be a number, got {value!r}")
    if annotation is str:
        if not isinstance(value, str):
            raise UserError(f"{label} must be a string, got {value!r}")
        return value
    return value
